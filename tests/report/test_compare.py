"""compare.py on fixed inputs: params diff, metric rows and their verdicts."""

from __future__ import annotations

import pytest

from mltemplate.gate import threshold
from mltemplate.metrics import scalar_metrics
from mltemplate.report.compare import MISSING, MetricRow, metric_rows, params_diff

BASE = {"accuracy": 0.95, "recall": 0.93, "f1": 0.94, "log_loss": 0.10, "support": {"a": 90, "b": 53}}
THRESHOLDS = {"accuracy": 0.90, "recall": 0.90, "f1": 0.90}


def test_params_diff_lists_only_changed_keys_by_dotted_path() -> None:
    base = {"seed": 1, "model": {"estimator": "lr", "hyperparameters": {"lr": {"C": 1.0, "max_iter": 100}}}}
    pr = {"seed": 1, "model": {"estimator": "lr", "hyperparameters": {"lr": {"C": 0.1, "max_iter": 100}}}}
    changes = params_diff(base, pr)
    assert [(c.key, c.base, c.pr, c.kind) for c in changes] == [("model.hyperparameters.lr.C", 1.0, 0.1, "changed")]


def test_params_diff_reports_added_and_removed_keys() -> None:
    changes = {c.key: c for c in params_diff({"a": 1, "gone": 2}, {"a": 1, "new": {"x": 3}})}
    assert changes["new.x"].kind == "added"
    assert changes["new.x"].base is MISSING
    assert changes["gone"].kind == "removed"
    assert changes["gone"].pr is MISSING
    assert set(changes) == {"new.x", "gone"}


def test_params_diff_without_base_params_lists_everything_as_added() -> None:
    assert {c.kind for c in params_diff(None, {"a": 1, "b": {"c": 2}})} == {"added"}


def test_scalar_metrics_drops_support_counts_and_non_numbers() -> None:
    assert scalar_metrics({**BASE, "note": "x", "flag": True}) == {
        "accuracy": 0.95,
        "recall": 0.93,
        "f1": 0.94,
        "log_loss": 0.10,
    }


@pytest.mark.parametrize(
    ("name", "base", "pr", "verdict"),
    [
        ("accuracy", 0.90, 0.95, "better"),
        ("accuracy", 0.95, 0.90, "worse"),
        ("log_loss", 0.20, 0.10, "better"),
        ("log_loss", 0.10, 0.20, "worse"),
        ("rmse", 4.0, 3.0, "better"),
        ("r2", 0.6, 0.5, "worse"),
        ("f1_macro", 0.8, 0.9, "better"),
        ("slices.sex.F.rmse", 3.0, 4.0, "worse"),
        ("slice_gap.sex.recall", 0.1, 0.05, "better"),
        ("accuracy", 0.95, 0.95, "same"),
        ("brier", 0.10, 0.20, "changed"),
        ("accuracy", None, 0.95, "new"),
        ("accuracy", 0.95, None, "removed"),
    ],
)
def test_metric_row_verdict_follows_the_metric_direction(
    name: str, base: float | None, pr: float | None, verdict: str
) -> None:
    assert MetricRow(name, base, pr, None).verdict == verdict


def test_metric_rows_cover_new_removed_and_thresholded_metrics() -> None:
    pr = {"accuracy": 0.96, "recall": 0.85, "brier": 0.05}
    limits = {**THRESHOLDS, "roc_auc": 0.95}
    rules = [threshold(name, pr.get(name), limit) for name, limit in limits.items()]
    rows = {row.name: row for row in metric_rows(BASE, pr, rules)}
    assert rows["accuracy"].delta == pytest.approx(0.01)
    assert rows["brier"].verdict == "new"
    assert rows["log_loss"].verdict == "removed"
    assert rows["recall"].passed is False
    assert rows["roc_auc"].pr is None
    assert rows["roc_auc"].passed is False
    assert rows["brier"].passed is None


def test_a_threshold_on_rmse_is_a_ceiling_in_the_rows() -> None:
    (row,) = metric_rows(None, {"rmse": 4.5}, [threshold("rmse", 4.5, 5.0)])
    assert row.passed is True
    assert row.threshold is not None
    assert row.threshold.bound == "≤"
