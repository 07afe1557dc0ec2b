"""charts.py: curves as Mermaid line charts, confusion matrices and importance as tables, escaped."""

from __future__ import annotations

from mltemplate.report import charts
from mltemplate.report.schema import Confusion, Side
from tests.report.samples import report


def test_curves_become_mermaid_line_charts_with_both_sides() -> None:
    base = Side(label="main", curves={"roc": [(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)]})
    pr = Side(label="PR", curves={"roc": [(0.0, 0.0), (0.1, 0.9), (1.0, 1.0)]})
    lines = charts.render_chart("roc", base, pr)
    assert lines[0] == "```mermaid"
    assert "xychart-beta" in lines
    series = [line for line in lines if line.strip().startswith("line [")]
    assert len(series) == 2
    assert series[0].strip().startswith("line [0.000, 0.000")  # base: 0 until fpr 0.5
    assert series[1].strip().startswith("line [0.000, 0.000, 0.900")  # PR: 0.9 from fpr 0.1


def test_step_curve_interpolates_precision_from_the_right() -> None:
    points = [(1.0, 0.5), (0.5, 0.8), (0.0, 1.0)]
    ys = charts.step_curve(points, interpolate_from_right=True)
    assert ys[0] == 1.0
    assert ys[charts.GRID.index(0.5)] == 0.8
    assert ys[-1] == 0.5


def test_confusion_matrix_is_a_table() -> None:
    lines = charts.render_confusion("PR", Confusion(labels=["no", "yes"], counts=[[5, 1], [2, 7]]))
    assert "| <code>no</code> | 5 | 1 |" in lines
    assert "| <code>yes</code> | 2 | 7 |" in lines


def test_importance_is_a_table_of_escaped_feature_names() -> None:
    pr = Side(label="PR", metrics={"accuracy": 0.9}, importance={"@team <b>x</b>": 0.25, "age": 0.1})
    text = "\n".join(charts.render_importance(report(pr=pr)))
    assert "| <code>age</code> | — | 0.1000 |" in text
    assert "@team" not in text
    assert "<b>" not in text


def test_a_regression_report_has_no_confusion_section() -> None:
    sides = {side: Side(label=side, metrics={"rmse": 1.0}) for side in ("base", "pr")}  # no curves, no confusion
    text = "\n".join(charts.render_plots(report(**sides), {}, published=False))
    assert "confusion" not in text
    assert "```mermaid" not in text
    one = Side(label="pr", confusion=Confusion(labels=["no", "yes"], counts=[[5, 1], [2, 7]]))
    text = "\n".join(charts.render_plots(report(base=sides["base"], pr=one), {}, published=False))
    assert "Base: no confusion matrix." in text  # a side without one is named when the other has one
