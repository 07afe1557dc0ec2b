"""`make report`: run the pipeline on this checkout (a PR), compare it with the base branch and write
report/report.md with its images (the PR comment). Exits 1, after writing the report, when the data step or a
stage failed or the quality gate failed, so the PR check fails and the comment says why.

The base branch's params.yaml, metrics.json, plots/*.png and dvc.lock are read from git (`git show BASE:...`);
the PR's come from the fresh `dvc repro`."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mltemplate import git, lock
from mltemplate.errors import CommandError
from mltemplate.paths import (
    DATA_DVC,
    DVC_LOCK,
    EXAMPLE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    MODEL_METADATA,
    PARAMS_FILE,
    PLOTS_DIR,
)
from mltemplate.report import compare
from mltemplate.report.loadtest import LoadStats

REPORT_DIR = Path("report")
REPORT_FILE = "report.md"
PR_NUMBER_FILE = "pr-number"
"""Written beside report.md when PR_NUMBER is set: the comment workflow reads (and validates) it."""
PLOTS = {
    "roc": "ROC",
    "precision_recall": "Precision-recall",
    "confusion": "Confusion matrix",
    "roc_ovr": "ROC, one vs rest",
    "predicted_vs_actual": "Predicted vs actual",
    "residuals": "Residuals",
    "importance": "Permutation importance",
}
"""The plots shown side by side, by file stem under plots/ (PNG rendered by `evaluate`); each task writes some."""
MARKER = "<!-- mltemplate-model-report -->"
TAIL_LINES = 25

PIPELINE: tuple[tuple[str, ...], ...] = (("python", "-m", "mltemplate.pipeline.data"), ("dvc", "repro"))
"""What `make report` runs before comparing: get the data, then every stage that changed."""


@dataclass(frozen=True)
class Failure:
    """A pipeline command that exited non-zero."""

    command: str
    returncode: int
    stage: str | None
    tail: str


@dataclass(frozen=True)
class Side:
    """What one branch has: raw params, metrics, plot PNGs by name, model file size in bytes."""

    label: str
    params: dict[str, Any] | None
    metrics: dict[str, Any] | None
    images: dict[str, bytes] = field(default_factory=dict)
    model_bytes: int | None = None


@dataclass(frozen=True)
class Serving:
    """Load runs of the PR's service and of the base's (same settings, same runner), or why one is missing."""

    pr: LoadStats | None
    base: LoadStats | None
    concurrency: int
    pr_reason: str = ""
    base_reason: str = ""


# --- reading both sides -----------------------------------------------------------------------------------


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


def _mapping(data: bytes | str | None, loader: Any) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        value = loader(data)
    except (ValueError, yaml.YAMLError):
        return None
    return dict(value) if isinstance(value, dict) else None


def _model_size(outs: Mapping[str, lock.Out]) -> int | None:
    """The size dvc.lock records for the model file (the file itself is in the DVC cache, not in git)."""
    out = outs.get(MODEL_FILE.as_posix())
    return out.size if out else None


def base_side(ref: str, label: str) -> Side:
    images = {name: png for name in PLOTS if (png := git.show(ref, PLOTS_DIR / f"{name}.png")) is not None}
    return Side(
        label=label,
        params=_mapping(git.show(ref, PARAMS_FILE), yaml.safe_load),
        metrics=_mapping(git.show(ref, METRICS_FILE), json.loads),
        images=images,
        model_bytes=_model_size(lock.parse(git.show(ref, DVC_LOCK))),
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def pr_side(label: str, *, failed: bool) -> Side:
    """The working tree after the pipeline ran; after a failure its metrics and plots are stale, so left out."""
    params = _mapping(_read(PARAMS_FILE), yaml.safe_load)
    if failed:
        return Side(label=label, params=params, metrics=None)
    images = {name: path.read_bytes() for name in PLOTS if (path := PLOTS_DIR / f"{name}.png").is_file()}
    return Side(
        label=label,
        params=params,
        metrics=_mapping(_read(METRICS_FILE), json.loads),
        images=images,
        model_bytes=MODEL_FILE.stat().st_size if MODEL_FILE.is_file() else None,
    )


# --- running the PR -------------------------------------------------------------------------------------


def failed_stage(output: str) -> str | None:
    """The stage DVC names in `ERROR: failed to reproduce 'train': ...`."""
    found = re.search(r"failed to reproduce '([^']+)'", output)
    return found[1] if found else None


def run_pipeline(commands: Sequence[Sequence[str]] = PIPELINE) -> Failure | None:
    """Run each command, echoing its output; stop at the first that fails and describe it."""
    for command in commands:
        args = [sys.executable, *command[1:]] if command[0] == "python" else list(command)
        print(f"report: $ {' '.join(command)}", flush=True)
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        output = (result.stdout + result.stderr).rstrip()
        if output:
            print(output, flush=True)
        if result.returncode != 0:
            tail = "\n".join(output.splitlines()[-TAIL_LINES:])
            return Failure(" ".join(command), result.returncode, failed_stage(output), tail)
    return None


def cached(md5: str) -> Path | None:
    """The DVC cache's copy of the file with this md5 (present after a local repro or a `dvc pull`)."""
    result = subprocess.run(["dvc", "cache", "dir"], capture_output=True, text=True, check=False)
    path = Path(result.stdout.strip()) / "files" / "md5" / md5[:2] / md5[2:]
    return path if result.returncode == 0 and path.is_file() else None


@contextmanager
def base_tree(ref: str) -> Iterator[Path]:
    """A detached worktree of `ref` with its model files restored from the DVC cache; removed after.
    Raises CommandError saying why when the base's model is not in the cache."""
    outs = lock.parse(git.show(ref, DVC_LOCK))
    files = {path: out.md5 if (out := outs.get(path.as_posix())) else None for path in (MODEL_FILE, MODEL_METADATA)}
    sources = {path: cached(md5) if md5 else None for path, md5 in files.items()}
    if not all(sources.values()):
        raise CommandError("its model is not in the DVC cache (configure a DVC remote so CI can pull it)")
    with tempfile.TemporaryDirectory(prefix="report-base-") as scratch:
        tree = Path(scratch) / "base"
        added = git.git("worktree", "add", "--detach", str(tree), ref)
        if added.returncode != 0:
            raise CommandError(f"git worktree add failed: {added.stderr.decode(errors='replace').strip()}")
        try:
            for path, source in sources.items():
                (tree / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source or "", tree / path)
            yield tree
        finally:
            git.git("worktree", "remove", "--force", str(tree))


def load_run(repo: Path, *, seconds: float, concurrency: int) -> LoadStats:
    """Serve `repo` under a real `bentoml serve`, warm it up, then load it for `seconds`."""
    from mltemplate.report import loadtest

    body = EXAMPLE_FILE.read_bytes()
    try:
        with loadtest.served(repo) as url:
            loadtest.measure(f"{url}/predict", body, concurrency=1, requests=5)  # warm-up, not counted
            return loadtest.measure(f"{url}/predict", body, concurrency=concurrency, duration=seconds)
    except loadtest.LoadTestError as error:
        raise CommandError(f"the service did not serve: {str(error).splitlines()[0]}") from None


def measure_serving(base_ref: str, *, seconds: float, concurrency: int) -> Serving:
    """The same short load run against the PR's service and, when its model can be restored, the base's."""
    if not EXAMPLE_FILE.is_file():
        reason = f"{EXAMPLE_FILE} not found"
        return Serving(None, None, concurrency, reason, reason)
    pr: LoadStats | None = None
    base: LoadStats | None = None
    pr_reason = base_reason = ""
    try:
        pr = load_run(Path.cwd(), seconds=seconds, concurrency=concurrency)
    except CommandError as error:
        pr_reason = str(error)
    try:
        with base_tree(base_ref) as tree:
            base = load_run(tree, seconds=seconds, concurrency=concurrency)
    except CommandError as error:
        base_reason = str(error)
    return Serving(pr, base, concurrency, pr_reason, base_reason)


# --- rendering ------------------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if value is compare.MISSING:
        return "_(absent)_"
    text = json.dumps(value) if isinstance(value, dict | list | bool) or value is None else str(value)
    return f"`{text}`"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


VERDICTS = {
    "better": "🟢 better",
    "worse": "🔴 worse",
    "same": "⚪ same",
    "changed": "🔵 changed",
    "new": "🆕 new",
    "removed": "⛔ removed",
}


def _threshold(row: compare.MetricRow) -> str:
    if row.threshold is None:
        return ""
    bound = "≤" if compare.direction(row.name) < 0 else "≥"
    return f"{bound} {row.threshold:.4f} {'✅' if row.passed else '❌'}"


def human_bytes(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def render_params(base: Side, pr: Side) -> list[str]:
    if pr.params is None:
        return ["_The PR has no readable params.yaml._"]
    changes = compare.params_diff(base.params, pr.params)
    if base.params is None:
        return [f"_{base.label} has no params.yaml yet: every param is new._", ""]
    if not changes:
        return ["No params changed.", ""]
    lines = [f"| Param | {base.label} | {pr.label} |", "|---|---|---|"]
    lines += [f"| `{c.key}` | {_value(c.base)} | {_value(c.pr)} |" for c in changes]
    return [*lines, ""]


def render_metrics(base: Side, pr: Side, thresholds: Mapping[str, float]) -> list[str]:
    if pr.metrics is None:
        return ["_No metrics: the pipeline did not finish (see above)._", ""]
    lines = []
    if base.metrics is None:
        lines += [f"_{base.label} has no metrics yet: the PR's are shown alone._", ""]
    lines += [f"| Metric | {base.label} | {pr.label} | Δ | | Threshold |", "|---|---:|---:|---:|---|---|"]
    for row in compare.metric_rows(base.metrics, pr.metrics, thresholds):
        delta = "—" if row.delta is None else f"{row.delta:+.4f}"
        lines.append(
            f"| `{row.name}` | {_number(row.base)} | {_number(row.pr)} | {delta} | {VERDICTS[row.verdict]} "
            f"| {_threshold(row)} |"
        )
    support = pr.metrics.get("support")
    if isinstance(support, dict) and support:
        lines += ["", "Held-out rows per class: " + ", ".join(f"`{k}` {v}" for k, v in support.items()) + "."]
    return [*lines, ""]


def _latency(stats: LoadStats | None, field: str) -> str:
    return "—" if stats is None else f"{getattr(stats, field):.1f} {'req/s' if field == 'rps' else 'ms'}"


def render_serving(base: Side, pr: Side, serving: Serving | None) -> list[str]:
    size = human_bytes(pr.model_bytes)
    if pr.model_bytes is not None and base.model_bytes:
        size += f" ({(pr.model_bytes - base.model_bytes) / base.model_bytes:+.1%})"
    lines = [
        f"| | {base.label} | {pr.label} |",
        "|---|---:|---:|",
        f"| Model file (`{MODEL_FILE.as_posix()}`) | {human_bytes(base.model_bytes)} | {size} |",
    ]
    if serving is None:
        return [*lines, "", "Latency: not measured (`--no-load`).", ""]
    for title, name in (("Latency p50", "p50_ms"), ("Latency p99", "p99_ms"), ("Throughput", "rps")):
        lines.append(f"| {title} | {_latency(serving.base, name)} | {_latency(serving.pr, name)} |")
    lines += [
        "",
        f"Load run: `POST /predict` with `{EXAMPLE_FILE.as_posix()}` from {serving.concurrency} concurrent "
        "clients against a local `bentoml serve` on the machine that ran the report, the same for both sides.",
    ]
    for label, stats, reason in (
        (base.label, serving.base, serving.base_reason),
        (pr.label, serving.pr, serving.pr_reason),
    ):
        if stats is None:
            lines.append(f"- {label}: not measured: {reason}.")
        else:
            failed = f" **{stats.errors} failed** ({stats.status_counts})" if stats.errors else " 0 errors"
            lines.append(f"- {label}: {stats.requests} requests in {stats.duration_s:.1f} s,{failed}.")
    return [*lines, ""]


def render_plots(base: Side, pr: Side) -> list[str]:
    if not pr.images and not base.images:
        return ["_No plots._", ""]
    lines = [f"| {base.label} | {pr.label} |", "|---|---|"]
    for name, title in PLOTS.items():
        if name not in base.images and name not in pr.images:
            continue  # a plot of another task
        left = f"![{title}, {base.label}](./base_{name}.png)" if name in base.images else f"_no {title}_"
        right = f"![{title}, {pr.label}](./pr_{name}.png)" if name in pr.images else f"_no {title}_"
        lines.append(f"| {left} | {right} |")
    return [*lines, ""]


def render(
    base: Side,
    pr: Side,
    *,
    thresholds: Mapping[str, float],
    gate_failures: Sequence[str],
    failure: Failure | None,
    serving: Serving | None,
    title: str = "Model report",
) -> str:
    """The report's markdown; images are referenced as ./base_<plot>.png and ./pr_<plot>.png beside it."""
    lines = [MARKER, f"## {title}: {pr.label} vs {base.label}", ""]
    if failure is not None:
        where = f" at stage `{failure.stage}`" if failure.stage else ""
        lines += [
            f"### ❌ Pipeline failed{where}",
            "",
            f"`{failure.command}` exited with {failure.returncode}. Last lines:",
            "",
            "```text",
            failure.tail,
            "```",
            "",
        ]
    elif gate_failures:
        lines += ["### ❌ Quality gate failed", "", *[f"- {reason}" for reason in gate_failures], ""]
    else:
        lines += [f"### ✅ Quality gate passed (thresholds, and tolerance against {base.label} on the same data)", ""]
    lines += ["### Params", "", *render_params(base, pr)]
    lines += ["### Metrics", "", *render_metrics(base, pr, thresholds)]
    lines += ["### Serving cost", "", *render_serving(base, pr, serving)]
    lines += ["### Plots", "", *render_plots(base, pr)]
    return "\n".join(lines).rstrip() + "\n"


# --- the command ----------------------------------------------------------------------------------------


def gate_settings(
    params: Mapping[str, Any] | None,
) -> tuple[dict[str, float], float, dict[str, float], str | None]:
    """Thresholds, tolerance and largest slice gaps from the PR's params.yaml, and the error when it does not
    validate (then no thresholds: the report is still written and the error fails the gate)."""
    from mltemplate.params import ParamsError, parse_params

    try:
        parsed = parse_params(params, source=PARAMS_FILE)
    except ParamsError as error:
        return {}, 0.0, {}, str(error)
    evaluate = parsed.evaluate
    return dict(evaluate.thresholds), evaluate.tolerance, dict(evaluate.max_slice_gap), None


def write(out: Path, markdown: str, base: Side, pr: Side, *, pr_number: str | None) -> Path:
    """report.md, base_<plot>.png and pr_<plot>.png in `out` (emptied of old images first)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    for prefix, side in (("base", base), ("pr", pr)):
        for name, png in side.images.items():
            (out / f"{prefix}_{name}.png").write_bytes(png)
    if pr_number is not None:
        (out / PR_NUMBER_FILE).write_text(pr_number + "\n", encoding="utf-8")
    report = out / REPORT_FILE
    report.write_text(markdown, encoding="utf-8")
    return report


def same_data(base_ref: str) -> bool:
    """Whether the PR tracks the same raw data as the base (data.dvc's md5), so their metrics are comparable."""
    return lock.tracked_md5(git.show(base_ref, DATA_DVC)) == lock.tracked_md5(_read(DATA_DVC))


def _pr_number(env: Mapping[str, str]) -> str | None:
    number = env.get("PR_NUMBER", "").strip()
    if not number:
        return None
    if not number.isdigit():
        raise CommandError(f"PR_NUMBER must be a positive integer, got {number!r}")
    return number


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.report.pr", description=__doc__)
    parser.add_argument("--base", default=os.environ.get("BASE") or None, help="base ref (env BASE; origin/main)")
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help="output directory (default: report)")
    parser.add_argument("--load-seconds", type=float, default=10.0, help="length of the load run (default: 10)")
    parser.add_argument("--concurrency", type=int, default=4, help="clients in the load run (default: 4)")
    parser.add_argument("--no-load", action="store_true", help="skip the load run (faster; no latency)")
    parser.add_argument("--no-repro", action="store_true", help="compare the outputs as they are, run nothing")
    args = parser.parse_args(argv)

    pr_number = _pr_number(os.environ)
    base_ref = resolve_base(args.base)
    base_label = base_ref.removeprefix("origin/")
    pr_label = f"PR #{pr_number}" if pr_number else "this branch"

    failure = None if args.no_repro else run_pipeline()
    base, pr = base_side(base_ref, base_label), pr_side(pr_label, failed=failure is not None)
    thresholds, tolerance, max_slice_gap, params_error = gate_settings(pr.params)
    gate_failures: list[str] = [params_error] if params_error else []
    serving = None
    if failure is None and pr.metrics is not None:
        gate_failures += compare.quality_gate(
            base.metrics,
            pr.metrics,
            thresholds=thresholds,
            tolerance=tolerance,
            base_label=base_label,
            same_data=same_data(base_ref),
            max_slice_gap=max_slice_gap,
        )
        if not args.no_load:
            serving = measure_serving(base_ref, seconds=args.load_seconds, concurrency=args.concurrency)
    elif failure is None:
        gate_failures.append(f"{METRICS_FILE} was not written")

    markdown = render(base, pr, thresholds=thresholds, gate_failures=gate_failures, failure=failure, serving=serving)
    report = write(args.out, markdown, base, pr, pr_number=pr_number)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(markdown)
    print(f"report: wrote {report} ({pr_label} vs {base_ref})")
    if failure is not None:
        where = f" at stage {failure.stage}" if failure.stage else ""
        raise CommandError(f"`{failure.command}` failed{where}; see {report}")
    if gate_failures:
        raise CommandError("quality gate failed: " + "; ".join(gate_failures).replace("`", ""))


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
