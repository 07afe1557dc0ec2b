"""`make comment ARTIFACT=<dir>`: validate a `pr-report` artifact and render the PR comment from its data.

Runs in the trusted comment job (the base repository's default branch, never PR code). The artifact is data
written by PR code, so: nothing but allowlisted files is read (report/artifact.py), every string from it is
escaped (HTML entities inside <code>/<pre>, where GitHub neither parses markdown nor links @mentions or #refs),
no path outside the output folder is referenced, and the quality gate is recomputed from this checkout's
params.yaml and metrics.json, whatever the artifact claims. Writes comment.md, status.json (the commit status
to post) and pr-number into --out; with --publish-plots also the validated PNGs, referenced by fixed names."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import string
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mltemplate import dvcfiles, gate, git, plots
from mltemplate.atomic import write_bytes, write_text
from mltemplate.errors import CommandError
from mltemplate.metrics import read_metrics
from mltemplate.params import EvaluateParams, ParamsError, load_params
from mltemplate.paths import DATA_DVC, METRICS_FILE, MODEL_FILE, PARAMS_FILE
from mltemplate.report import compare
from mltemplate.report.artifact import MAX_TAIL, MAX_TEXT, ArtifactError, Confusion, LoadRun, Report, Side, load

MARKER = "<!-- mltemplate-model-report -->"
COMMENT_FILE = "comment.md"
STATUS_FILE = "status.json"
PR_NUMBER_FILE = "pr-number"
STATUS_CONTEXT = "model report / quality gate"
MAX_COMMENT = 60_000
"""GitHub refuses comments over 65,536 characters."""
SAFE = frozenset(string.ascii_letters + string.digits + " .,-")
GRID = [round(i / 20, 2) for i in range(21)]
"""x positions of the Mermaid line charts (xychart-beta spaces y values evenly along a categorical axis)."""
COLORS = ("#1f77b4", "#d62728")


# --- escaping: the only ways artifact text reaches the comment -----------------------------------------------


def escape(text: str, limit: int = MAX_TEXT) -> str:
    """`text` as inert HTML text: letters, digits, space and `.,-` as they are, control characters as spaces,
    everything else as a numeric entity (so no markdown, HTML, @mention, #ref, URL or table pipe survives)."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    out = []
    for char in text:
        if char in SAFE:
            out.append(char)
        elif char != "\n" and unicodedata.category(char)[0] in "CZ":  # controls, bidi overrides, odd spaces
            out.append(" ")
        else:
            out.append(f"&#{ord(char)};")
    return "".join(out)


def code(text: str) -> str:
    """Artifact text inline: escaped, inside <code> (GitHub links no mention or reference inside code)."""
    return f"<code>{escape(text).replace('&#10;', ' ')}</code>"


def pre(text: str) -> str:
    """Artifact text as a block (a failing command's output), lines kept."""
    return "<pre>" + escape(text, MAX_TAIL).replace("&#10;", "\n") + "</pre>"


def value(item: object) -> str:
    if item is compare.MISSING:
        return "<em>absent</em>"
    return code(item if isinstance(item, str) else json.dumps(item))


def number(item: float | None) -> str:
    return "—" if item is None else f"{item:.4f}"


# --- the gate: recomputed from trusted settings ------------------------------------------------------------


@dataclass(frozen=True)
class ReportGate:
    """Why the PR fails (empty: it passes), where the policy came from, and the gate's verdict on its metrics."""

    failures: tuple[str, ...]
    source: str
    verdict: gate.Verdict | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def thresholds(self) -> list[gate.Criterion]:
        return self.verdict.of("threshold") if self.verdict is not None else []

    def status(self) -> dict[str, str]:
        """The body of `POST /repos/{owner}/{repo}/statuses/{sha}`."""
        text = f"passed ({self.source})" if self.passed else "failed: " + "; ".join(self.failures)
        text = "".join(c if c.isascii() and c.isprintable() else " " for c in text.replace("`", ""))
        return {
            "state": "success" if self.passed else "failure",
            "context": STATUS_CONTEXT,
            "description": text if len(text) <= 140 else text[:139] + "…",
        }


def judge_report(
    report: Report,
    *,
    policy: EvaluateParams,
    base_metrics: Mapping[str, object] | None,
    source: str,
    base_data_md5: str | None = None,
) -> ReportGate:
    """The quality gate for `report`: its failure, stale outputs or invalid params fail it; otherwise the gate's
    verdict (mltemplate.gate) on the PR's metrics under `policy`, against `base_metrics` too when both sides were
    scored on the same data. Every reason is built from trusted names and numbers only."""
    failures: list[str] = []
    if report.failure is not None:
        failures.append("the pipeline failed (see below)")
    if report.params_error is not None:
        failures.append("the PR's params.yaml is invalid (see below)")
    if report.stale:
        failures.append(f"{len(report.stale)} committed output(s) are stale (listed below)")
    verdict = None
    if report.failure is None and report.pr.metrics is None:
        failures.append("the PR's pipeline wrote no metrics")
    elif report.pr.metrics is not None:
        same_data = report.pr.data_md5 == base_data_md5
        verdict = gate.judge(report.pr.metrics, policy, base=dict(base_metrics or {}) if same_data else None)
        failures += [c.reason(name=lambda n: f"`{n}`") for c in verdict.failed]
    return ReportGate(tuple(failures), source, verdict)


# --- rendering ------------------------------------------------------------------------------------------

VERDICTS = {
    "better": "🟢 better",
    "worse": "🔴 worse",
    "same": "⚪ same",
    "changed": "🔵 changed",
    "new": "🆕 new",
    "removed": "⛔ removed",
}


def pr_label(report: Report) -> str:
    return f"PR #{report.pr_number}" if report.pr_number is not None else "this branch"


def render_params(report: Report) -> list[str]:
    base, pr = report.base.params, report.pr.params
    if pr is None:
        return ["<em>The PR has no readable params.yaml.</em>", ""]
    if base is None:
        return ["<em>The base has no params.yaml yet: every param is new.</em>", ""]
    changes = compare.params_diff(base, pr)
    if not changes:
        return ["No params changed.", ""]
    lines = ["| Param | Base | PR |", "|---|---|---|"]
    lines += [f"| {code(c.key)} | {value(c.base)} | {value(c.pr)} |" for c in changes]
    return [*lines, ""]


def _threshold(row: compare.MetricRow) -> str:
    if row.threshold is None:
        return ""
    return f"{row.threshold.bound} {row.threshold.limit:.4f} {'✅' if row.passed else '❌'}"


def render_metrics(report: Report, thresholds: Sequence[gate.Criterion]) -> list[str]:
    if report.pr.metrics is None:
        return ["<em>No metrics: the pipeline did not finish (see above).</em>", ""]
    lines = []
    if report.base.metrics is None:
        lines += ["<em>The base has no metrics yet: the PR's are shown alone.</em>", ""]
    lines += ["| Metric | Base | PR | Δ | | Threshold |", "|---|---:|---:|---:|---|---|"]
    for row in compare.metric_rows(report.base.metrics, report.pr.metrics, thresholds):
        delta = "—" if row.delta is None else f"{row.delta:+.4f}"
        lines.append(
            f"| {code(row.name)} | {number(row.base)} | {number(row.pr)} | {delta} | {VERDICTS[row.verdict]} "
            f"| {_threshold(row)} |"
        )
    if report.pr.support:
        counts = ", ".join(f"{code(k)} {v}" for k, v in report.pr.support.items())
        lines += ["", f"Held-out rows per class: {counts}."]
    return [*lines, ""]


def human_bytes(size: int | None) -> str:
    if size is None:
        return "—"
    amount = float(size)
    for unit in ("B", "KiB", "MiB"):
        if amount < 1024 or unit == "MiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Spread:
    """Median, min and max of one figure over the load runs of one side."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, runs: Sequence[LoadRun], field: str) -> Spread | None:
        values = [float(getattr(run, field)) for run in runs]
        return cls(statistics.median(values), min(values), max(values)) if values else None

    def show(self, unit: str) -> str:
        if self.low == self.high:
            return f"{self.median:.1f} {unit}"
        return f"{self.median:.1f} {unit} ({self.low:.1f} to {self.high:.1f})"


RESOLUTION = 0.25
"""The smallest change of a median the report calls a difference: two services of the same model measured on one
shared 2-core runner differ by this much from noise alone (372 vs 613 req/s was seen for one model)."""


def difference(base: Spread | None, pr: Spread | None, *, higher_is_better: bool) -> str:
    """'no measurable difference' while the two ranges overlap or the medians differ by less than RESOLUTION;
    else the change of the medians."""
    if base is None or pr is None:
        return "—"
    change = (pr.median - base.median) / base.median if base.median else 0.0
    if (pr.low <= base.high and base.low <= pr.high) or abs(change) < RESOLUTION:
        return "no measurable difference"
    better = (change > 0) == higher_is_better
    return f"{'🟢' if better else '🔴'} {change:+.0%}"


def render_serving(report: Report) -> list[str]:
    base, pr = report.base.model_bytes, report.pr.model_bytes
    size = human_bytes(pr)
    if pr is not None and base:
        size += f" ({(pr - base) / base:+.1%})"
    lines = [
        "| | Base | PR | Difference |",
        "|---|---:|---:|---|",
        f"| Model file (<code>{MODEL_FILE.as_posix()}</code>) | {human_bytes(base)} | {size} | |",
    ]
    serving = report.serving
    if serving is None:
        return [*lines, "", "Latency: not measured.", ""]
    figures = [("Throughput", "rps", "req/s", True), ("Latency p50", "p50_ms", "ms", False)]
    figures.append(("Latency p99", "p99_ms", "ms", False))
    for title, field, unit, higher in figures:
        left, right = Spread.of(serving.base.runs, field), Spread.of(serving.pr.runs, field)
        shown = [s.show(unit) if s else "—" for s in (left, right)]
        lines.append(f"| {title} | {shown[0]} | {shown[1]} | {difference(left, right, higher_is_better=higher)} |")
    rounds = max(len(serving.base.runs), len(serving.pr.runs))
    lines += [
        "",
        f"Medians (min to max) of {rounds} alternating load runs per side (base, PR, PR, base, ...), "
        f"{serving.seconds:g} s each, {serving.concurrency} concurrent clients posting the example request to a "
        "local `bentoml serve` on the runner. Overlapping ranges, or medians less than "
        f"{RESOLUTION:.0%} apart, are no measurable difference on a shared runner.",
    ]
    for name, side in (("Base", serving.base), ("PR", serving.pr)):
        if not side.runs:
            lines.append(f"- {name}: not measured: {code(side.reason)}.")
        elif errors := sum(run.errors for run in side.runs):
            lines.append(f"- {name}: **{errors} failed requests** of {sum(run.requests for run in side.runs)}.")
    return [*lines, ""]


def step_curve(points: Sequence[tuple[float, float]], *, interpolate_from_right: bool) -> list[float]:
    """y on GRID: ROC as a step function (best y at x' <= x), precision-recall interpolated (best y at x' >= x)."""
    out = []
    for x in GRID:
        if interpolate_from_right:
            ys = [py for px, py in points if px >= x - 1e-12]
        else:
            ys = [py for px, py in points if px <= x + 1e-12]
        out.append(max(ys) if ys else 0.0)
    return out


def render_chart(name: str, base: Side, pr: Side) -> list[str]:
    """A Mermaid line chart with the base (blue) and PR (red) curves; GitHub renders it without any image host.
    No artifact text goes into it: only fixed titles and numbers."""
    axes = {"roc": ("False positive rate", "True positive rate"), "precision_recall": ("Recall", "Precision")}
    series = [side.curves[name] for side in (base, pr) if name in side.curves]
    if not series:
        return []
    right = name == "precision_recall"
    names = " and ".join(
        f"{color_name}: {who}"
        for color_name, who, side in (("blue", "base", base), ("red", "PR", pr))
        if name in side.curves
    )
    palette = ", ".join(COLORS if name in base.curves else COLORS[1:])
    lines = [
        "```mermaid",
        '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + palette + '"}}}}%%',
        "xychart-beta",
        f'  title "{plots.BY_NAME[name].title} ({names})"',
        f'  x-axis "{axes[name][0]}" [{", ".join(f"{x:.2f}" for x in GRID)}]',
        f'  y-axis "{axes[name][1]}" 0 --> 1',
    ]
    for points in series:
        ys = step_curve(points, interpolate_from_right=right)
        lines.append(f"  line [{', '.join(f'{y:.3f}' for y in ys)}]")
    return [*lines, "```", ""]


def render_importance(report: Report) -> list[str]:
    """Permutation importance on the held-out split (the drop of the task's score when a feature is shuffled)."""
    base, pr = report.base.importance, report.pr.importance
    if not pr and not base:
        return ["_No permutation importance (plots/importance.json)._", ""]
    names = list(pr) + [name for name in base if name not in pr]
    lines = [f"| Feature | {escape(report.base.label)} | {escape(report.pr.label)} |", "|---|---:|---:|"]
    for name in names:
        lines.append(f"| {code(name)} | {_importance(base.get(name))} | {_importance(pr.get(name))} |")
    return [*lines, ""]


def _importance(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def render_confusion(title: str, confusion: Confusion | None) -> list[str]:
    if confusion is None:
        return [f"{title}: no confusion matrix.", ""]
    header = " | ".join(code(label) for label in confusion.labels)
    lines = [f"{title}:", "", f"| actual / predicted | {header} |", "|---|" + "---:|" * len(confusion.labels)]
    for label, row in zip(confusion.labels, confusion.counts, strict=True):
        lines.append(f"| {code(label)} | " + " | ".join(str(count) for count in row) + " |")
    return [*lines, ""]


def render_plots(report: Report, images: Mapping[str, bytes], *, published: bool) -> list[str]:
    lines: list[str] = []
    for name in ("roc", "precision_recall"):
        lines += render_chart(name, report.base, report.pr)
    lines += render_confusion("Base", report.base.confusion)
    lines += render_confusion("PR", report.pr.confusion)
    if published:
        # Only allowlisted names (artifact.IMAGE_FILES) whose bytes passed the PNG checks, copied beside comment.md.
        lines += [" ".join(f"![{name}](./{name})" for name in sorted(images)), ""] if images else []
    else:
        lines += ["The PNG plots are in the run's `pr-report` artifact.", ""]
    return lines


def render(
    report: Report,
    verdict: ReportGate,
    *,
    images: Mapping[str, bytes] | None = None,
    published: bool = False,
) -> str:
    """The comment's markdown, from validated data only; `published` references `images` by their file names."""
    lines = [MARKER, f"## Model report: {pr_label(report)} vs {code(report.base_ref)}", ""]
    if verdict.passed:
        lines += ["### ✅ Quality gate passed", "", f"Thresholds and tolerance from {verdict.source}.", ""]
    else:
        lines += ["### ❌ Quality gate failed", "", *[f"- {reason}" for reason in verdict.failures], ""]
        lines += [f"Thresholds and tolerance from {verdict.source}.", ""]
    if (failure := report.failure) is not None:
        where = f" at stage {code(failure.stage)}" if failure.stage else ""
        lines += [f"### ❌ Pipeline failed{where}", "", f"{code(failure.command)} exited with {failure.returncode}."]
        lines += ["", pre(failure.tail), ""] if failure.tail else [""]
    if report.params_error is not None:
        lines += ["### ❌ Invalid params.yaml", "", pre(report.params_error), ""]
    if report.stale:
        lines += [
            "### ❌ Stale committed outputs",
            "",
            "These committed files are not what the PR's code, params and data reproduce "
            "(run `make repro` and commit them):",
            "",
            *[f"- {code(path)}" for path in report.stale],
            "",
        ]
    lines += ["### Params", "", *render_params(report)]
    lines += ["### Metrics", "", *render_metrics(report, verdict.thresholds)]
    lines += ["### Serving cost", "", *render_serving(report)]
    lines += ["### Feature importance", "", *render_importance(report)]
    lines += ["### Plots", "", *render_plots(report, images or {}, published=published)]
    text = "\n".join(lines).rstrip() + "\n"
    if len(text) > MAX_COMMENT:
        raise ArtifactError(f"the rendered comment has {len(text)} characters, more than the {MAX_COMMENT} allowed")
    return text


# --- the command ----------------------------------------------------------------------------------------


def trusted_settings(params_file: Path, metrics_file: Path) -> tuple[EvaluateParams, dict[str, object] | None]:
    """The gate's policy (evaluate: thresholds, tolerance, slices, largest slice gaps) from this checkout's
    params.yaml, and its metrics.json (None when absent)."""
    try:
        params = load_params(params_file)
    except ParamsError as error:
        raise CommandError(f"the trusted {error}") from None
    metrics = read_metrics(metrics_file) if metrics_file.is_file() else None
    return params.evaluate, metrics


def trusted_data_md5(dvc_file: Path) -> str | None:
    """The md5 the trusted checkout's data.dvc records: the PR's metrics compare with the base's only on this data."""
    return dvcfiles.tracked_md5(dvc_file.read_text(encoding="utf-8")) if dvc_file.is_file() else None


def source_label(params_file: Path) -> str:
    found = git.head(params_file.resolve().parent)
    return f"{params_file.name}" + (f" at {found[0][:7]}" if found else "") + " of the base repository"


def write_status(out: Path, verdict: ReportGate) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / STATUS_FILE, json.dumps(verdict.status(), indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.report.comment", description=__doc__)
    parser.add_argument("artifact", type=Path, help="the downloaded pr-report artifact folder")
    parser.add_argument("--out", type=Path, default=Path("comment"), help="output folder (default: comment)")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE, help="trusted params.yaml (thresholds)")
    parser.add_argument("--metrics", type=Path, default=METRICS_FILE, help="trusted metrics.json (tolerance base)")
    parser.add_argument("--head-sha", default=os.environ.get("HEAD_SHA") or None, help="expected head commit")
    parser.add_argument(
        "--publish-plots",
        action="store_true",
        default=os.environ.get("PUBLISH_PLOTS", "").lower() == "true",
        help="reference the validated PNGs in the comment, for CML to upload (env PUBLISH_PLOTS=true)",
    )
    args = parser.parse_args(argv)

    policy, base_metrics = trusted_settings(args.params, args.metrics)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in (*out.glob("*.png"), out / COMMENT_FILE, out / STATUS_FILE, out / PR_NUMBER_FILE):
        old.unlink(missing_ok=True)
    try:
        loaded = load(args.artifact)
        report = loaded.report
        if args.head_sha and report.head_sha != args.head_sha:
            raise ArtifactError(f"head_sha is {report.head_sha!r}, not the commit the report run built")
        verdict = judge_report(
            report,
            policy=policy,
            base_metrics=base_metrics,
            base_data_md5=trusted_data_md5(args.params.parent / DATA_DVC),
            source=source_label(args.params),
        )
        images = loaded.images if args.publish_plots else {}
        markdown = render(report, verdict, images=images, published=args.publish_plots)
    except ArtifactError as error:
        write_status(out, ReportGate((f"the report artifact was refused: {error}",), "refused"))
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
