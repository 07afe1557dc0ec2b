"""The comment's charts and tables of plot data: ROC and precision-recall curves as Mermaid line charts (base blue,
PR red; GitHub renders them without an image host), confusion matrices and permutation importance as tables, and
the validated PNGs when the repository publishes them. No artifact text goes into a chart; tables escape it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mltemplate import plots
from mltemplate.report.escape import code
from mltemplate.report.schema import Confusion, Report, Side

GRID = [round(i / 20, 2) for i in range(21)]
"""x positions of the Mermaid line charts (xychart-beta spaces y values evenly along a categorical axis)."""


COLORS = ("#1f77b4", "#d62728")


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
    lines = [f"| Feature | {code(report.base.label)} | {code(report.pr.label)} |", "|---|---:|---:|"]
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
    if report.base.confusion is not None or report.pr.confusion is not None:  # a regression model has none
        lines += render_confusion("Base", report.base.confusion)
        lines += render_confusion("PR", report.pr.confusion)
    if published:
        # Only allowlisted names (artifact.IMAGE_FILES) whose bytes passed the PNG checks, copied beside comment.md.
        lines += [" ".join(f"![{name}](./{name})" for name in sorted(images)), ""] if images else []
    else:
        lines += ["The PNG plots are in the run's `pr-report` artifact.", ""]
    return lines
