"""The PR comment's markdown, from validated report data only (report/artifact.py): the verdict, what changed in
params and policy, both models compared on the same rows with intervals, thresholds, serving cost, importance and
plots. Every string that comes from the artifact or the data goes through report/escape.py."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mltemplate import gate
from mltemplate.comparison import Difference
from mltemplate.params import EvaluateParams
from mltemplate.paths import MODEL_FILE
from mltemplate.report import compare
from mltemplate.report.artifact import ArtifactError
from mltemplate.report.charts import render_importance, render_plots
from mltemplate.report.escape import code, pre
from mltemplate.report.schema import ComparisonData, LoadRun, Report
from mltemplate.report.verdict import ReportVerdict

MARKER = "<!-- mltemplate-model-report -->"


MAX_COMMENT = 60_000
"""GitHub refuses comments over 65,536 characters."""


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


def value(item: object) -> str:
    if item is compare.MISSING:
        return "<em>absent</em>"
    return code(item if isinstance(item, str) else json.dumps(item))


def number(item: float | None) -> str:
    return "—" if item is None else f"{item:.4f}"


def self_reported(report: Report) -> list[str]:
    """Why the numbers below are the PR's own, and what decides instead."""
    if report.code_changes:
        files = ", ".join(code(name) for name in report.code_changes)
        why = f"This PR changes more than params and data ({files}), so the base's code did not run it:"
    else:
        why = "No trusted run of this PR was given to the comment:"
    return [
        f"{why} the numbers below come from the PR's own code, which could print anything. The status stays "
        "pending (or failed, when even these numbers fail); a maintainer's review of the code decides, and the "
        "merge queue judges the merge commit."
    ]


def render_policy(base: EvaluateParams, pr: EvaluateParams) -> list[str]:
    """Every change the PR makes to the gate's policy, with a warning on each that lets more through."""
    changes = compare.policy_changes(base, pr)
    if not changes:
        return []
    lines = ["### ⚠️ Policy changes" if any(c.loosened for c in changes) else "### Policy changes", ""]
    lines += ["| Setting | Base | PR | |", "|---|---|---|---|"]
    for c in changes:
        mark = "⚠️ loosens the gate" if c.loosened else ""
        lines.append(f"| {code(c.key)} | {value(c.base)} | {value(c.pr)} | {mark} |")
    lines += ["", "The trusted verdict applies the base's policy; these changes take effect once merged.", ""]
    return lines


VERDICTS = {
    "better": "🟢 better",
    "worse": "🔴 worse",
    "no measurable difference": "⚪ no measurable difference",
    "too few rows": "⚫ too few rows",
}


def _difference(d: Difference) -> list[str]:
    interval = f"[{d.low:+.4f}, {d.high:+.4f}]" if d.measurable else "—"
    return [number(d.base), number(d.candidate), f"{d.delta:+.4f}", interval, VERDICTS[d.verdict]]


def render_comparison(found: ComparisonData | None) -> list[str]:
    """Both models on the same held-out rows: each metric's difference with its interval and verdict, overall and
    per group of each slice column."""
    if found is None:
        return ["<em>Not compared: the pipeline did not finish.</em>", ""]
    if found.reason is not None:
        return [f"Not compared on the same rows: {code(found.reason)}. The gate applies the thresholds only.", ""]
    comparison = found.to_comparison()
    lines = [
        f"Both models scored on the **{comparison.rows}** held-out rows that neither was trained on "
        f"(the base's model {code(found.base_from)}).",
        "",
        "| Metric | Base | PR | Difference | 95% interval | Verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    lines += ["| " + " | ".join([code(d.metric), *_difference(d)]) + " |" for d in comparison.differences]
    lines += [
        "",
        f"The interval holds PR minus base with {comparison.confidence:.0%} confidence (a paired bootstrap: "
        f"{comparison.resamples:,} seeded resamples of these rows, the same rows for both models); when it "
        "contains 0 the difference is within noise.",
        *[f"Note: {code(note)}." for note in comparison.notes],
        "",
    ]
    if comparison.groups:
        lines += [
            "Per group:",
            "",
            "| Column | Group | Rows | Metric | Base | PR | Difference | 95% interval | Verdict |",
        ]
        lines.append("|---|---|---:|---|---:|---:|---:|---|---|")
        for group in comparison.groups:
            where = f"| {code(group.column)} | {code(group.value)} | {group.rows} |"
            if not group.judged or not group.differences:
                lines.append(f"{where} | | | | | {VERDICTS['too few rows']} |")
                continue
            lines += [f"{where} " + " | ".join([code(d.metric), *_difference(d)]) + " |" for d in group.differences]
        lines.append("")
    return lines


def render_thresholds(report: Report, thresholds: Sequence[gate.Criterion]) -> list[str]:
    """The PR's held-out metrics (its own split, as metrics.json has them) against the policy's thresholds."""
    if report.pr.metrics is None:
        return ["<em>No metrics: the pipeline did not finish (see above).</em>", ""]
    lines = ["| Metric | PR | Threshold |", "|---|---:|---|"]
    for row in compare.metric_rows(None, report.pr.metrics, thresholds):
        mark = "" if row.threshold is None else f"{row.threshold.bound} {row.threshold.limit:.4f}"
        mark += "" if row.passed is None else (" ✅" if row.passed else " ❌")
        lines.append(f"| {code(row.name)} | {number(row.pr)} | {mark} |")
    if report.pr.support:
        counts = ", ".join(f"{code(k)} {v}" for k, v in report.pr.support.items())
        lines += ["", f"The PR's held-out rows per class: {counts}."]
    return [*lines, ""]


def render(
    report: Report,
    verdict: ReportVerdict,
    *,
    base_policy: EvaluateParams | None = None,
    pr_policy: EvaluateParams | None = None,
    images: Mapping[str, bytes] | None = None,
    published: bool = False,
) -> str:
    """The comment's markdown, from validated data only; `published` references `images` by their file names."""
    lines = [MARKER, f"## Model report: {pr_label(report)} vs {code(report.base_ref)}", ""]
    if verdict.self_reported:
        lines += ["### ⚠️ Self-reported numbers", "", *self_reported(report), ""]
    if verdict.passed:
        lines += ["### ✅ Quality gate passed", ""]
    else:
        lines += ["### ❌ Quality gate failed", "", *[f"- {reason}" for reason in verdict.failures(code)], ""]
    lines += [f"Policy (thresholds, tolerance, slices) from {verdict.source}.", ""]
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
    if base_policy is not None and pr_policy is not None:
        lines += render_policy(base_policy, pr_policy)
    lines += ["### Compared with the base on the same rows", "", *render_comparison(report.comparison)]
    lines += ["### Thresholds", "", *render_thresholds(report, verdict.thresholds)]
    lines += ["### Serving cost", "", *render_serving(report)]
    lines += ["### Feature importance", "", *render_importance(report)]
    lines += ["### Plots", "", *render_plots(report, images or {}, published=published)]
    text = "\n".join(lines).rstrip() + "\n"
    if len(text) > MAX_COMMENT:
        raise ArtifactError(f"the rendered comment has {len(text)} characters, more than the {MAX_COMMENT} allowed")
    return text
