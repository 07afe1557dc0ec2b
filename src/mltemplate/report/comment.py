"""`make comment ARTIFACT=<dir> VERDICT=<dir>`: validate the PR's `pr-report` artifact and the trusted verdict,
and render the PR comment and its commit status from their data.

Runs in the trusted comment job (the base repository's default branch, never PR code). The artifact is data written
by the PR's code, so: nothing but allowlisted files is read (report/artifact.py), every string from it is rendered
inert (report/escape.py), no path outside the output folder is referenced, and the gate is recomputed
(report/verdict.py) under this checkout's policy (params.yaml's `evaluate`), whatever the artifact claims. The
numbers shown and judged are the trusted verdict job's (`make verdict`: this checkout's code on the PR's params
and data) whenever it ran; for a PR that changes code they are the PR's own, shown under a warning and never
given a `success` status. Writes comment.md, status.json (the commit status to post) and pr-number into --out; with
--publish-plots also the validated PNGs of the trusted run (or the PR's own plots, never as the base's)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mltemplate import git
from mltemplate.atomic import write_bytes, write_text
from mltemplate.errors import CommandError
from mltemplate.params import EvaluateParams, ParamsError, load_params
from mltemplate.paths import PARAMS_FILE
from mltemplate.report.artifact import ArtifactError, load
from mltemplate.report.render import render
from mltemplate.report.schema import Report
from mltemplate.report.verdict import ReportVerdict, judge_report

COMMENT_FILE = "comment.md"
STATUS_FILE = "status.json"
PR_NUMBER_FILE = "pr-number"


def trusted_policy(params_file: Path) -> EvaluateParams:
    """The gate's policy (thresholds, tolerance, slices, largest slice gaps) from this checkout's params.yaml."""
    try:
        return load_params(params_file).evaluate
    except ParamsError as error:
        raise CommandError(f"the trusted {error}") from None


def source_label(params_file: Path) -> str:
    found = git.head(params_file.resolve().parent)
    return f"{params_file.name}" + (f" at {found[0][:7]}" if found else "") + " of the base repository"


def shown(artifact_dir: Path, verdict_dir: Path | None) -> tuple[Report, dict[str, bytes], bool]:
    """The report the comment shows and judges, its PNGs, and whether its numbers are self-reported: the trusted
    verdict's when it ran the pipeline; else the PR's own (whatever its artifact claims), with the files the
    trusted job found beyond params and data, and only the PR's own plots."""
    fork = load(artifact_dir)  # validated either way: it also says which PR to comment on (make pr-head checks it)
    trusted = load(verdict_dir) if verdict_dir is not None else None
    if trusted is not None and trusted.report.trust == "trusted" and not trusted.report.code_changes:
        return trusted.report.model_copy(update={"pr_number": fork.report.pr_number}), trusted.images, False
    changes = trusted.report.code_changes if trusted is not None and trusted.report.trust == "trusted" else []
    report = fork.report.model_copy(update={"trust": "self-reported", "code_changes": changes})
    return report, {name: png for name, png in fork.images.items() if name.startswith("pr_")}, True


def write_status(out: Path, verdict: ReportVerdict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / STATUS_FILE, json.dumps(verdict.status(), indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.report.comment", description=__doc__)
    parser.add_argument("artifact", type=Path, help="the downloaded pr-report artifact folder")
    parser.add_argument(
        "--verdict",
        type=Path,
        default=Path(os.environ["VERDICT"]) if os.environ.get("VERDICT") else None,
        help="the trusted verdict job's folder (env VERDICT); without it the PR's numbers are self-reported",
    )
    parser.add_argument("--out", type=Path, default=Path("comment"), help="output folder (default: comment)")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE, help="trusted params.yaml (the gate's policy)")
    parser.add_argument("--head-sha", default=os.environ.get("HEAD_SHA") or None, help="expected head commit")
    parser.add_argument(
        "--publish-plots",
        action="store_true",
        default=os.environ.get("PUBLISH_PLOTS", "").lower() == "true",
        help="reference the validated PNGs in the comment, for CML to upload (env PUBLISH_PLOTS=true)",
    )
    args = parser.parse_args(argv)

    policy = trusted_policy(args.params)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in (*out.glob("*.png"), out / COMMENT_FILE, out / STATUS_FILE, out / PR_NUMBER_FILE):
        old.unlink(missing_ok=True)
    try:
        report, images, self_reported = shown(args.artifact, args.verdict)
        if args.head_sha and report.head_sha != args.head_sha:
            raise ArtifactError(f"head_sha is {report.head_sha!r}, not the commit the report run built")
        verdict = judge_report(report, policy=policy, source=source_label(args.params), self_reported=self_reported)
        images = images if args.publish_plots else {}
        markdown = render(
            report,
            verdict,
            base_policy=policy,
            pr_policy=report.policy.to_policy(),
            images=images,
            published=args.publish_plots,
        )
    except ArtifactError as error:
        write_status(out, ReportVerdict((f"the report artifact was refused: {error}",), "refused"))
        raise CommandError(f"refused the report artifact: {error}") from None
    for name, png in images.items():
        write_bytes(out / name, png)
    write_text(out / COMMENT_FILE, markdown)
    write_status(out, verdict)
    if report.pr_number is not None:
        write_text(out / PR_NUMBER_FILE, f"{report.pr_number}\n")
    print(f"comment: wrote {out / COMMENT_FILE}; quality gate {'passed' if verdict.passed else 'failed'}")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
