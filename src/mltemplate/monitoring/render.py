"""The monitor's reports: monitoring/report.md (the summary: verdict, alerts, every check) and monitoring/report.html
(the same, plus what a person would rather look at: each feature's distribution in training and in the window,
the predicted labels, and the metrics over past runs). Images are embedded, so the HTML is one file to attach."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in CI or in a container
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from mltemplate.monitoring.alerts import Check
from mltemplate.monitoring.check import PREDICTED, Outcome, Reference
from mltemplate.schema import Schema


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def verdict(outcome: Outcome) -> str:
    if outcome.alerts:
        return f"ALERT: {len(outcome.alerts)} check(s) breached their threshold"
    if outcome.pending:
        return f"healthy (with {len(outcome.pending)} breach(es) not yet repeated often enough to alert)"
    return "healthy"


def _table(checks: Sequence[Check], alerting: set[str]) -> list[str]:
    lines = ["| Check | Method | Value | Threshold | Status |", "|---|---|---:|---:|---|"]
    for c in checks:
        status = "ALERT" if c.key in alerting else ("breach (debounced)" if c.breached else "ok")
        lines.append(f"| {c.kind} {c.name} | {c.method} | {c.value:.4g} | {c.threshold:.4g} | {status} |")
    return lines


def markdown(outcome: Outcome, *, title: str) -> str:
    alerting = {c.key for c in outcome.alerts}
    lines = [
        f"# {title}",
        "",
        f"**{verdict(outcome)}**",
        "",
        f"- Window: {_when(outcome.window_start)} to {_when(outcome.window_end)}",
        f"- Logged records: {outcome.rows}; labelled: {outcome.labelled}",
    ]
    lines += [f"- {note}" for note in outcome.notes]
    if outcome.alerts:
        lines += ["", "## Alerts", "", *[f"- {c.describe()}" for c in outcome.alerts]]
    for kind, heading in (("drift", "Drift"), ("quality", "Quality")):
        checks = [c for c in outcome.checks if c.kind == kind]
        if checks:
            ordered = sorted(checks, key=lambda c: (not c.breached, c.name))
            lines += ["", f"## {heading}", "", *_table(ordered, alerting)]
    return "\n".join(lines) + "\n"


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _distribution(name: str, reference: pd.Series, current: pd.Series, numeric: bool, check: Check | None) -> str:
    figure, axes = plt.subplots(figsize=(4.2, 2.6))
    if numeric:
        ref = pd.to_numeric(reference, errors="coerce").dropna()
        cur = pd.to_numeric(current, errors="coerce").dropna()
        both = pd.concat([ref, cur])
        bins = 30 if both.nunique() > 30 else max(both.nunique(), 1)
        span = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
        axes.hist(ref, bins=bins, range=span, density=True, alpha=0.5, label="training")
        axes.hist(cur, bins=bins, range=span, density=True, alpha=0.5, label="window")
    else:
        ref_share = reference.astype(str).value_counts(normalize=True)
        cur_share = current.astype(str).value_counts(normalize=True)
        frame = pd.DataFrame({"training": ref_share, "window": cur_share}).fillna(0.0)
        frame.plot.bar(ax=axes, alpha=0.7)
    status = "" if check is None else (" - DRIFT" if check.breached else " - ok")
    axes.set_title(f"{name}{status}", fontsize=9)
    axes.legend(fontsize=7)
    axes.tick_params(labelsize=7)
    return _png(figure)


def _metrics_over_time(points: Sequence[tuple[float, dict[str, float]]], thresholds: dict[str, float]) -> str:
    figure, axes = plt.subplots(figsize=(7, 3))
    names = sorted({name for _, values in points for name in values})
    for name in names:
        xs: Any = [dt.datetime.fromtimestamp(ts, dt.UTC) for ts, values in points if name in values]
        ys = [values[name] for _, values in points if name in values]
        (line,) = axes.plot(xs, ys, marker="o", label=name)
        if name in thresholds:
            axes.axhline(thresholds[name], color=line.get_color(), linestyle=":", linewidth=1)
    axes.set_title("Metrics on labelled records per monitor run (dotted: thresholds)", fontsize=9)
    axes.legend(fontsize=7)
    axes.tick_params(labelsize=7)
    figure.autofmt_xdate()
    return _png(figure)


def page(
    outcome: Outcome,
    reference: Reference,
    schema: Schema,
    *,
    title: str,
    metric_points: Sequence[tuple[float, dict[str, float]]],
    thresholds: dict[str, float],
) -> str:
    """The HTML report: the summary table, then the pictures, drifted features first."""
    by_name = {c.name: c for c in outcome.checks if c.kind == "drift"}
    figures = []
    window = outcome.window
    if len(window):
        order = sorted(schema.features, key=lambda n: (not (n in by_name and by_name[n].breached), n))
        figures.append(
            _distribution(
                "predicted label" if schema.classification else f"predicted {schema.target}",
                pd.Series(reference.predicted),
                window[PREDICTED],
                numeric=not schema.classification,
                check=by_name.get("prediction"),
            )
        )
        figures += [
            _distribution(n, reference.features[n], window[n], n in schema.numeric, by_name.get(n)) for n in order
        ]
    over_time = _metrics_over_time(metric_points, thresholds) if metric_points else "<p>No labelled runs yet.</p>"
    summary = html.escape(markdown(outcome, title=title))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} pre{{background:#f6f8fa;padding:1em;overflow:auto}}
.grid{{display:flex;flex-wrap:wrap;gap:8px}}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<h2>Summary</h2>
<pre>{summary}</pre>
<h2>Quality over time</h2>
{over_time}
<h2>Distributions: training rows against the window</h2>
<div class="grid">
{"".join(figures) or "<p>No records in the window.</p>"}
</div>
</body></html>
"""
