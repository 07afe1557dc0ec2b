"""`make report`: run the pipeline on this checkout (a PR), compare it with the base branch and write the
`pr-report` artifact into report/: report.json (data only, report/artifact.py), the plot PNGs, and report.md (the
same rendering as the comment, for the job summary). The base's model is scored on the same held-out rows as the
PR's, with intervals (mltemplate.comparison): from DVC when it has the base's model, else reproduced from the base
commit (mltemplate.reproduce). Exits 1, after writing everything, when the data step or a stage failed, when the
committed outputs are stale, or when the gate (the PR's own policy; the trusted comment job applies the base's)
failed."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltemplate import git, reproduce
from mltemplate.errors import CommandError
from mltemplate.params import EvaluateParams, ParamsError, parse_params
from mltemplate.paths import PARAMS_FILE
from mltemplate.report import artifact, render, schema
from mltemplate.report.run import run_pipeline, stale_outputs
from mltemplate.report.schema import ComparisonData, PolicyData, Report, Trust
from mltemplate.report.serving import measure_serving
from mltemplate.report.sides import base_params, base_side, images, pr_side, read_params
from mltemplate.report.verdict import ReportVerdict, judge_report
from mltemplate.same_rows import compare_models

REPORT_DIR = Path("report")


def resolve_base(requested: str | None) -> str:
    """The base ref: `requested` (BASE), else origin/main, else main; it must name a commit."""
    candidates = [requested] if requested else ["origin/main", "main"]
    for ref in candidates:
        if git.is_commit(ref):
            return ref
    raise CommandError(
        f"base ref {candidates[0]!r} is not a commit here"
        + ("" if requested else " (nor is 'main')")
        + ": fetch it (`git fetch origin main`, or `fetch-depth: 0` in CI) or set BASE"
    )


def policy(params: Mapping[str, Any] | None) -> tuple[EvaluateParams, str | None]:
    """The gate's policy from the PR's params.yaml, and the error when it does not validate (then the default
    policy, no thresholds: the report is still written and the error fails the gate)."""
    try:
        return parse_params(params, source=PARAMS_FILE).evaluate, None
    except ParamsError as error:
        return EvaluateParams(), str(error)[: schema.MAX_TAIL]


def write(out: Path, report: Report, markdown: str, pngs: Mapping[str, bytes]) -> None:
    """The artifact: report.json, report.md and the PNGs, in `out` emptied of any earlier artifact file."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.name in artifact.ALLOWED_FILES or old.name == "pr-number":
            old.unlink()
    for name, png in pngs.items():
        (out / name).write_bytes(png)
    (out / artifact.DATA_FILE).write_text(report.to_json(), encoding="utf-8")
    (out / artifact.REPORT_FILE).write_text(markdown, encoding="utf-8")


def _pr_number(env: Mapping[str, str]) -> int | None:
    number = env.get("PR_NUMBER", "").strip()
    if not number:
        return None
    if not re.fullmatch(r"[1-9][0-9]{0,9}", number):
        raise CommandError(f"PR_NUMBER must be a positive integer, got {number!r}")
    return int(number)


def _head_sha(env: Mapping[str, str]) -> str | None:
    sha = env.get("HEAD_SHA", "").strip()
    if sha and not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise CommandError(f"HEAD_SHA must be a full commit sha (40 hex digits), got {sha!r}")
    return sha or None


def compare_with_base(
    base_ref: str, *, slices: list[str], seed: int, stack: contextlib.ExitStack
) -> tuple[ComparisonData, Path | None]:
    """The PR's model against the base's on the same rows, and the base's checkout (kept open in `stack` for the
    load runs); without a base model, a comparison that says why, and no checkout."""
    try:
        base = stack.enter_context(reproduce.checkout(base_ref))
    except reproduce.ReproduceError as error:
        return ComparisonData(reason=f"the base's model could not be had: {error}"), None
    found = compare_models(base.root, Path(), slices=slices, seed=seed)
    return ComparisonData.of(found, base_from=base.how), base.root


def track(comparison: ComparisonData) -> None:
    """Add the comparison to the MLflow run of the PR's model (when this machine's store has one)."""
    from mltemplate.model_metadata import read_model_metadata
    from mltemplate.registry import runs

    if comparison.differences:
        print(f"report: {runs.log_comparison(read_model_metadata(), comparison.to_comparison())}")


@dataclass(frozen=True)
class Built:
    """A written-out report: its data, the comment's markdown, the PNGs, and the verdict under the PR's policy."""

    report: Report
    markdown: str
    images: dict[str, bytes]
    verdict: ReportVerdict


@dataclass(frozen=True)
class Load:
    rounds: int
    seconds: float
    concurrency: int


def build(
    base_ref: str,
    *,
    pr_number: int | None,
    head_sha: str | None,
    repro: bool = True,
    stale: Callable[[], list[str]] = stale_outputs,
    load: Load | None = None,
    trust: Trust = "self-reported",
    label: str | None = None,
    compare: bool = True,
) -> Built:
    """Run the pipeline here (unless `repro` is False), read both sides, compare the models on the same rows (the
    base's checkout also serves the load runs when `load` says how many) and judge the report under the PR's own
    policy (the trusted comment re-judges it under the base's)."""
    base_label = label or base_ref.removeprefix("origin/")
    failure = run_pipeline() if repro else None
    stale_files = stale() if failure is None and repro else []
    base, pr = base_side(base_ref, base_label), pr_side("PR", failed=failure is not None)
    raw = read_params()
    pr_policy, params_error = policy(raw)
    base_policy, _ = policy(base_params(base_ref))
    comparison, serving = None, None
    with contextlib.ExitStack() as stack:
        if failure is None and pr.metrics is not None:
            slices = list(dict.fromkeys([*base_policy.slices, *pr_policy.slices]))
            seed = raw.get("seed", 0) if isinstance(raw, dict) and isinstance(raw.get("seed"), int) else 0
            if compare:
                comparison, base_root = compare_with_base(base_ref, slices=slices, seed=seed, stack=stack)
            else:
                comparison, base_root = ComparisonData(reason="not compared (--no-compare)"), None
            if load is not None:
                serving = measure_serving(
                    base_root,
                    rounds=load.rounds,
                    seconds=load.seconds,
                    concurrency=load.concurrency,
                    base_missing=comparison.reason or "",
                )
    report = Report(
        pr_number=pr_number,
        head_sha=head_sha,
        base_ref=base_label[: schema.MAX_TEXT],
        base=base,
        pr=pr,
        policy=PolicyData.of(pr_policy),
        params_error=params_error,
        failure=failure,
        stale=stale_files,
        serving=serving,
        comparison=comparison,
        trust=trust,
    )
    verdict = judge_report(
        report, policy=pr_policy, source="the PR's own params.yaml (the comment re-checks against the base's)"
    )
    try:
        markdown = render.render(report, verdict, base_policy=base_policy, pr_policy=pr_policy)
    except artifact.ArtifactError as error:  # too long for a comment: report.json still carries everything
        markdown = f"{render.MARKER}\n## Model report\n\nNot rendered: {error}.\n"
    if comparison is not None:
        track(comparison)
    return Built(report, markdown, images(base_ref, pr_failed=failure is not None), verdict)


def finish(built: Built, out: Path, *, base_ref: str) -> None:
    """Write the artifact and the job summary; then fail, after writing them, as the report says."""
    write(out, built.report, built.markdown, built.images)
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(built.markdown)
    print(f"report: wrote {out / artifact.DATA_FILE} and {artifact.REPORT_FILE} (vs {base_ref})")
    report = built.report
    if (failure := report.failure) is not None:
        where = f" at stage {failure.stage}" if failure.stage else ""
        raise CommandError(f"`{failure.command}` failed{where}; see {out / artifact.REPORT_FILE}")
    if report.stale:
        raise CommandError(
            "the committed outputs are not what the pipeline reproduces: "
            + ", ".join(report.stale)
            + "; run `make repro` and commit them"
        )
    if not built.verdict.passed:
        raise CommandError("quality gate failed: " + "; ".join(built.verdict.failures()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.report.pr", description=__doc__)
    parser.add_argument("--base", default=os.environ.get("BASE") or None, help="base ref (env BASE; origin/main)")
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help="output directory (default: report)")
    parser.add_argument("--load-seconds", type=float, default=5.0, help="length of each load run (default: 5)")
    parser.add_argument("--rounds", type=int, default=4, help="load runs per side, alternating (default: 4)")
    parser.add_argument("--concurrency", type=int, default=4, help="clients in the load run (default: 4)")
    parser.add_argument("--no-load", action="store_true", help="skip the load runs (faster; no latency)")
    parser.add_argument("--no-repro", action="store_true", help="compare the outputs as they are, run nothing")
    parser.add_argument("--no-compare", action="store_true", help="do not score the base's model on the same rows")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= schema.MAX_RUNS:
        raise CommandError(f"--rounds must be in 1..{schema.MAX_RUNS}, got {args.rounds}")
    base_ref = resolve_base(args.base)
    load = None if args.no_load else Load(args.rounds, args.load_seconds, args.concurrency)
    built = build(
        base_ref,
        pr_number=_pr_number(os.environ),
        head_sha=_head_sha(os.environ),
        repro=not args.no_repro,
        load=load,
        compare=not args.no_compare,
    )
    finish(built, args.out, base_ref=base_ref)


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
