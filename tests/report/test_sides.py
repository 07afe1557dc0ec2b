"""sides.py on fixed inputs: what the report reads of each side (the base through DVC at its commit, the PR from the
working tree) and how it turns plot files and metrics into the artifact's data."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltemplate.report import sides
from mltemplate.report.schema import Confusion


def test_scalar_params_flattens_and_keeps_lists_as_json_text() -> None:
    params = {"seed": 1, "model": {"C": 0.5, "cols": ["a", "b"], "none": None}, "flag": True}
    assert sides.scalar_params(params) == {
        "seed": 1,
        "model.C": 0.5,
        "model.cols": '["a", "b"]',
        "model.none": None,
        "flag": True,
    }


def test_curve_reads_the_named_axes() -> None:
    rows = [{"fpr": 0, "tpr": 0.5}, {"fpr": 1, "tpr": 1}]
    assert sides.curve(rows, "roc") == [(0.0, 0.5), (1.0, 1.0)]


@pytest.mark.parametrize("rows", [None, [{"x": 1}], [{"fpr": "a", "tpr": 1}]])
def test_curve_is_none_for_rows_it_cannot_read(rows: list[dict[str, object]] | None) -> None:
    assert sides.curve(rows, "roc") is None


def test_confusion_counts_actual_by_predicted() -> None:
    rows = [{"actual": "b", "predicted": "a"}, {"actual": "a", "predicted": "a"}, {"actual": "b", "predicted": "b"}]
    assert sides.confusion(rows) == Confusion(labels=["a", "b"], counts=[[1, 0], [1, 1]])


def test_confusion_reads_the_stored_counts() -> None:
    rows = [
        {"actual": a, "predicted": p, "count": n}
        for a, p, n in [("a", "a", 5), ("a", "b", 0), ("b", "a", 2), ("b", "b", 9)]
    ]
    assert sides.confusion(rows) == Confusion(labels=["a", "b"], counts=[[5, 0], [2, 9]])


def test_importance_keeps_the_most_important_features_first() -> None:
    rows = [{"feature": f"f{i}", "importance": i / 100} for i in range(sides.TOP_FEATURES + 5)]
    found = sides.importance([*rows, {"feature": "bad", "importance": "x"}, "not a row"])  # type: ignore[list-item]
    assert len(found) == sides.TOP_FEATURES
    assert list(found)[:2] == [f"f{sides.TOP_FEATURES + 4}", f"f{sides.TOP_FEATURES + 3}"]
    assert "bad" not in found


def test_side_keeps_scalar_metrics_and_support_apart() -> None:
    metrics = {"accuracy": 0.9, "support": {"no": 3, "yes": 2}}
    built = sides.side("PR", params=None, metrics=metrics, points={}, model_bytes=10)
    assert built.metrics == {"accuracy": 0.9}
    assert built.support == {"no": 3, "yes": 2}


def test_base_side_reads_params_metrics_plots_and_model_size_through_dvc(dvc_repo: Path) -> None:
    (dvc_repo / "params.yaml").write_text("seed: 2\n")  # the working tree is not the base
    base = sides.base_side("main", "main")
    assert base.params == {"seed": 1, "model.C": 1.0}
    assert base.metrics == {"accuracy": 0.9}
    assert base.support == {"no": 3}
    assert base.curves == {"roc": [(0.0, 0.0), (1.0, 1.0)]}
    assert base.model_bytes == 2048
    assert base.confusion is None


def test_the_pr_side_after_a_failure_leaves_out_its_stale_outputs(dvc_repo: Path) -> None:
    pr = sides.pr_side("PR", failed=True)
    assert pr.params == {"seed": 1, "model.C": 1.0}
    assert (pr.metrics, pr.curves, pr.model_bytes) == (None, {}, None)
    assert sides.pr_side("PR", failed=False).metrics == {"accuracy": 0.9}
