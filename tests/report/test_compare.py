"""compare.py on fixed inputs: params diff, metric rows and verdicts, and the PR quality gate."""

from __future__ import annotations

import pytest

from mltemplate.report.compare import MISSING, MetricRow, metric_rows, params_diff, quality_gate, scalar_metrics

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
    rows = {row.name: row for row in metric_rows(BASE, pr, {**THRESHOLDS, "roc_auc": 0.95})}
    assert rows["accuracy"].delta == pytest.approx(0.01)
    assert rows["brier"].verdict == "new"
    assert rows["log_loss"].verdict == "removed"
    assert rows["recall"].passed is False
    assert rows["roc_auc"].pr is None
    assert rows["roc_auc"].passed is False
    assert rows["brier"].passed is None


def test_quality_gate_passes_within_thresholds_and_tolerance() -> None:
    pr = {"accuracy": 0.94, "recall": 0.92, "f1": 0.935, "log_loss": 0.5}
    assert quality_gate(BASE, pr, thresholds=THRESHOLDS, tolerance=0.02) == []


def test_quality_gate_names_the_metric_below_its_threshold_and_by_how_much() -> None:
    pr = {**BASE, "recall": 0.88}
    failures = quality_gate(None, pr, thresholds=THRESHOLDS, tolerance=0.02)
    assert failures == ["`recall` 0.8800 is below its threshold 0.9000 by 0.0200"]


def test_quality_gate_fails_a_drop_against_base_beyond_the_tolerance() -> None:
    pr = {**BASE, "f1": 0.91}
    failures = quality_gate(BASE, pr, thresholds=THRESHOLDS, tolerance=0.02, base_label="main")
    assert failures == ["`f1` fell 0.0300 behind main (0.9400 -> 0.9100); the tolerance is 0.0200"]


def test_quality_gate_does_not_gate_lower_is_better_or_unknown_metrics_on_tolerance() -> None:
    pr = {**BASE, "log_loss": 0.9, "brier": 0.9}
    assert quality_gate({**BASE, "brier": 0.1}, pr, thresholds=THRESHOLDS, tolerance=0.0) == []


def test_quality_gate_fails_a_thresholded_metric_missing_from_the_pr() -> None:
    failures = quality_gate(BASE, {"accuracy": 0.95, "f1": 0.95}, thresholds=THRESHOLDS, tolerance=0.02)
    assert failures == ["`recall` is missing from the PR's metrics"]


def test_a_pr_on_other_data_is_gated_by_thresholds_only() -> None:
    base, pr = {"recall": 0.95}, {"recall": 0.80}
    assert quality_gate(base, pr, thresholds={"recall": 0.9}, tolerance=0.02, same_data=False) == [
        "`recall` 0.8000 is below its threshold 0.9000 by 0.1000"
    ]
    assert quality_gate(base, pr, thresholds={}, tolerance=0.02, same_data=False) == []
    assert quality_gate(base, pr, thresholds={}, tolerance=0.02, same_data=True)  # same data: the drop counts


def test_a_threshold_on_rmse_is_a_ceiling_in_the_gate_and_the_rows() -> None:
    failures = quality_gate(None, {"rmse": 5.5}, thresholds={"rmse": 5.0}, tolerance=0.0)
    assert failures == ["`rmse` 5.5000 is above its ceiling 5.0000 by 0.5000"]
    (row,) = metric_rows(None, {"rmse": 4.5}, {"rmse": 5.0})
    assert row.passed is True


def test_quality_gate_fails_a_slice_gap_beyond_its_limit() -> None:
    pr = {"recall": 0.95, "slice_gap": {"sex": {"recall": 0.2}}}
    failures = quality_gate(None, pr, thresholds={}, tolerance=0.0, max_slice_gap={"recall": 0.1})
    assert failures == ["`slice_gap.sex.recall` 0.2000 is above its ceiling 0.1000 by 0.1000"]


def test_tolerance_gates_r2_but_not_rmse() -> None:
    base, pr = {"r2": 0.8, "rmse": 1.0}, {"r2": 0.7, "rmse": 9.0}
    assert quality_gate(base, pr, thresholds={}, tolerance=0.05) == [
        "`r2` fell 0.1000 behind base (0.8000 -> 0.7000); the tolerance is 0.0500"
    ]
