"""`python -m mltemplate.monitoring check|feedback|retrain`: `make monitor`, `make feedback`, `make retrain`
(docs/monitoring.md).

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
from mltemplate.monitoring import check, feedback, migrations, render, store
from mltemplate.monitoring.alerts import KINDS
from mltemplate.params import LABELLER_NAME, load_params
from mltemplate.paths import MONITOR_ALERTS, MONITOR_REPORT_HTML, MONITOR_REPORT_MD, PARAMS_FILE, RETRAIN_DIR


class AlertsFired(CommandError):
    """At least one alert fired: `make monitor` exits 1."""


def monitor(url: str, *, now: float | None = None, output: Path = MONITOR_REPORT_MD.parent) -> check.Outcome:
    """One monitor run over the database at `url`; writes the reports and alerts.json into `output`."""
    params = load_params(PARAMS_FILE)
    reference, metadata = check.load_reference()
    db = migrations.open_store(url)
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
    from mltemplate.model_metadata import read_model_metadata
    from mltemplate.monitoring import labels

    if not LABELLER_NAME.match(args.labeller):
        raise CommandError(f"--labeller {args.labeller!r} is not a labeller name (1-32 of a-z, 0-9, _, -)")
    metadata = read_model_metadata()
    classes = metadata.classes if metadata.input_schema.classification else None  # regression: numbers
    try:
        given = feedback.read_csv(args.file, classes)
        db = migrations.open_store()
        with db.connect() as connection:
            records = store.request_positions(connection, (label.request_id for label in given))
        accepted, problems = feedback.resolve(given, records, where=str(args.file), first_line=2)  # 1 is the header
        if problems and (args.all_or_nothing or not accepted):
            raise feedback.FeedbackError(problems)
    except feedback.FeedbackError as error:
        for problem in error.problems:
            print(f"{problem.field}: {problem.error}", file=sys.stderr)
        raise
    # The file's labels are one submission: importing the same file again stores nothing twice.
    key = feedback.Submission(given).key()
    stored = labels.store_labels(db, accepted, labeller=args.labeller, submission=key)
    print(f"feedback: stored {stored} label(s) from {args.file} as labeller {args.labeller!r}")
    for problem in problems:
        print(f"{problem.field}: {problem.error}", file=sys.stderr)
    if problems:
        raise CommandError(f"{len(problems)} label(s) of {args.file} name no logged record (listed above)")


def _retrain(args: argparse.Namespace) -> None:
    from mltemplate.monitoring import handoff, retrain, summary

    params = load_params(PARAMS_FILE)
    done = retrain.retrain(migrations.open_store(), params)
    title = f"Retrain of {params.name} on labelled production records"
    atomic.write_text(RETRAIN_DIR / handoff.SUMMARY_MD, summary.markdown(done, title=title))
    atomic.write_text(RETRAIN_DIR / handoff.SUMMARY_JSON, done.to_json())
    print(
        f"retrain: added {done.added} production row(s) to {params.data.raw} ({done.rows_after} rows); cap {done.cap}"
    )
    if done.left:
        print(f"retrain: {done.left} eligible row(s) over the cap are left for the next retrain")
    for path in handoff.collect(Path.cwd(), RETRAIN_DIR):
        print(f"retrain: changed {path}")
    verdict = "passes" if done.passed else "FAILS"
    print(f"retrain: the retrained model {verdict} its verdict on the {done.reference_rows} reference rows")
    for rule in done.verdict:
        if not rule["passed"]:
            print(f"retrain: fails: {rule['reason']}")
    print(f"retrain: summary in {RETRAIN_DIR / handoff.SUMMARY_MD}; `make push-data` sends the data to the remote")


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
    importing.add_argument("--labeller", default="operator", help="who the labels are from (default: operator)")
    importing.add_argument(
        "--all-or-nothing", action="store_true", help="store none unless every label names a logged record"
    )
    importing.set_defaults(handler=_feedback)
    retraining = commands.add_parser("retrain", help="add labelled production rows to the data, dvc repro, judge")
    retraining.set_defaults(handler=_retrain)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    sys.exit(run(main))
