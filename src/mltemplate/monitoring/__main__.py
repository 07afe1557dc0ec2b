"""`python -m mltemplate.monitoring check|feedback|retrain|retrain-used`: `make monitor`, `make feedback`,
`make retrain`, `make retrain-used` (docs/monitoring.md).

check: exit 0 when healthy, 1 when an alert fires (one `alert:` line each, naming the feature or metric, its value
and its threshold); writes monitoring/report.md, report.html and alerts.json, and stores the run in the database."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mltemplate import atomic
from mltemplate.errors import CommandError, run
from mltemplate.monitoring import check, feedback, render, store
from mltemplate.monitoring.alerts import KINDS
from mltemplate.params import load_params
from mltemplate.paths import MONITOR_ALERTS, MONITOR_REPORT_HTML, MONITOR_REPORT_MD, PARAMS_FILE


class AlertsFired(CommandError):
    """At least one alert fired: `make monitor` exits 1."""


def monitor(url: str, *, now: float | None = None, output: Path = MONITOR_REPORT_MD.parent) -> check.Outcome:
    """One monitor run over the database at `url`; writes the reports and alerts.json into `output`."""
    params = load_params(PARAMS_FILE)
    reference, metadata = check.load_reference()
    db = store.open_store(url)
    try:
        outcome = check.run(db, reference, metadata, params.monitor, now=now)
        points = check.metric_history(db)
    finally:
        db.dispose()
    title = f"Monitoring report: {metadata.name}"
    atomic.write_text(output / MONITOR_REPORT_MD.name, render.markdown(outcome, title=title))
    atomic.write_text(
        output / MONITOR_REPORT_HTML.name,
        render.page(
            outcome,
            reference,
            metadata.input_schema,
            title=title,
            metric_points=points,
            thresholds=dict(params.monitor.thresholds),
        ),
    )
    firing = {kind: [c.describe() for c in outcome.alerts if c.kind == kind] for kind in KINDS}
    atomic.write_text(
        output / MONITOR_ALERTS.name,
        json.dumps(
            {"alerts": {k: v for k, v in firing.items() if v}, "healthy": [k for k, v in firing.items() if not v]},
            indent=2,
        )
        + "\n",
    )
    return outcome


def _check(args: argparse.Namespace) -> None:
    if args.if_configured and not os.environ.get(store.ENV_URL):
        # A fresh copy of the template has no production database: say so and succeed.
        print(f"::notice::{store.ENV_URL} is not set: no production prediction log to monitor")
        return
    url = store.database_url()
    outcome = monitor(url, output=args.output)
    print(f"monitor: {render.verdict(outcome)}")
    window = load_params().monitor.window
    print(f"monitor: {outcome.rows} logged records, {outcome.labelled} labelled, in the last {window}")
    for note in outcome.notes:
        print(f"monitor: {note}")
    for pending in outcome.pending:
        print(f"monitor: breach (not yet an alert): {pending.describe()}")
    print(f"monitor: report in {args.output / MONITOR_REPORT_HTML.name} and {args.output / MONITOR_REPORT_MD.name}")
    for alert in outcome.alerts:
        print(f"alert: {alert.describe()}")
    if outcome.alerts:
        raise AlertsFired(f"{len(outcome.alerts)} alert(s) fired")


def _feedback(args: argparse.Namespace) -> None:
    from mltemplate.metadata import read_model_metadata

    metadata = read_model_metadata()
    classes = metadata.classes if metadata.input_schema.classification else None  # regression: numbers
    try:
        labels = feedback.read_csv(args.file, classes)
        db = store.open_store()
        stored = feedback.store_labels(db, labels, where=str(args.file), first_line=2)  # line 1 is the header
    except feedback.FeedbackError as error:
        for problem in error.problems:
            print(f"{problem.field}: {problem.error}", file=sys.stderr)
        raise
    print(f"feedback: stored {stored} label(s) from {args.file}")


def _retrain(args: argparse.Namespace) -> None:
    from mltemplate.monitoring import retrain

    params = load_params(PARAMS_FILE)
    db = store.open_store()
    appended = retrain.append(db, params)
    print(f"retrain: appended {appended} labelled production record(s) to {params.data.raw}; data.dvc updated")
    if not args.no_pipeline:
        retrain.run_pipeline()
        print("retrain: pipeline done; commit data.dvc, dvc.lock, metrics.json and plots/ (and `dvc push` the data)")
    print(f"retrain: `make retrain-used` marks the records in {retrain.APPENDED_FILE} used once their PR exists")


def _retrain_used(args: argparse.Namespace) -> None:
    from mltemplate.monitoring import retrain

    print(f"retrain: marked {retrain.mark_used(store.open_store())} record(s) used")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.monitoring", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="drift and quality of the last window; exit 1 on an alert")
    checking.add_argument("--output", type=Path, default=MONITOR_REPORT_MD.parent, help="where the reports go")
    checking.add_argument(
        "--if-configured", action="store_true", help=f"succeed with a notice when {store.ENV_URL} is not set (CI)"
    )
    checking.set_defaults(handler=_check)
    importing = commands.add_parser("feedback", help="store true labels from a CSV of request_id,label[,position]")
    importing.add_argument("file", type=Path)
    importing.set_defaults(handler=_feedback)
    retraining = commands.add_parser("retrain", help="append labelled production records to the data; dvc repro")
    retraining.add_argument("--no-pipeline", action="store_true", help="only append and re-track the data")
    retraining.set_defaults(handler=_retrain)
    used = commands.add_parser("retrain-used", help="mark the records the last retrain appended used (PR opened)")
    used.set_defaults(handler=_retrain_used)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    sys.exit(run(main))
