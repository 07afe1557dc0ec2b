"""Quality on labelled records: the metrics, their floors, and which breaches become alerts."""

from __future__ import annotations

import numpy as np
import pytest

from mltemplate.metrics import names
from mltemplate.monitoring.alerts import Check, debounce
from mltemplate.monitoring.quality import quality_checks, scores
from mltemplate.params import DebounceParams


def binary(positive_scores: list[float]) -> np.ndarray:
    """Probabilities in class order ("no", "yes") from the positive class's."""
    return np.array([[1 - p, p] for p in positive_scores])


def test_binary_scores_are_about_the_positive_class() -> None:
    values = scores("binary", ["yes", "yes", "no", "no"], binary([0.9, 0.4, 0.1, 0.6]), ["no", "yes"], "yes")
    assert {k: values[k] for k in ("accuracy", "precision", "recall", "f1", "roc_auc")} == {
        "accuracy": 0.5,
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "roc_auc": 0.75,
    }
    assert set(values) == set(names("binary"))


def test_roc_auc_is_left_out_when_one_class_is_missing() -> None:
    assert "roc_auc" not in scores("binary", ["yes", "yes"], binary([0.9, 0.4]), ["no", "yes"], "yes")


def test_multiclass_scores_are_the_tasks_metrics() -> None:
    outputs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
    values = scores("multiclass", ["a", "b", "c", "c"], outputs, ["a", "b", "c"])
    assert set(values) == set(names("multiclass"))
    assert values["accuracy"] == 0.75
    assert values["recall_macro"] == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-6)


def test_regression_scores_read_the_labels_as_numbers() -> None:
    values = scores("regression", ["1.0", "2.0", "4.0"], np.array([2.0, 3.0, 5.0]), [])
    assert (values["rmse"], values["mae"]) == (1.0, 1.0)
    assert set(values) == set(names("regression"))


def test_a_metric_below_its_floor_breaches_and_one_without_a_threshold_is_not_checked() -> None:
    checks = quality_checks({"recall": 0.6, "accuracy": 0.95, "f1": 0.7}, {"recall": 0.8, "accuracy": 0.9})
    assert [(c.name, c.breached) for c in checks] == [("recall", True), ("accuracy", False)]
    assert checks[0].describe() == "quality recall: floor 0.6 < 0.8"


def test_an_error_above_its_ceiling_breaches() -> None:
    checks = quality_checks({"rmse": 12.0, "mae": 3.0}, {"rmse": 10.0, "mae": 5.0})
    assert [(c.name, c.method, c.breached) for c in checks] == [("rmse", "ceiling", True), ("mae", "ceiling", False)]
    assert checks[0].describe() == "quality rmse: ceiling 12 > 10"
    assert checks[1].describe() == "quality mae: ceiling 3 <= 5"


def breach(name: str) -> Check:
    return Check("drift", name, "ks", 0.001, 0.01, breached=True)


@pytest.mark.parametrize(
    ("history", "fires"),
    [
        ([], False),
        ([["drift:x"]], True),
        ([[], ["drift:x"]], True),
        ([[], [], ["drift:x"]], False),  # outside the last 3 windows
        ([["drift:y"]], False),
    ],
)
def test_an_alert_needs_the_breach_in_two_of_the_last_three_runs(history: list[list[str]], fires: bool) -> None:
    alerts = debounce([breach("x")], history, DebounceParams(breaches=2, windows=3))
    assert bool(alerts) is fires


def test_one_of_one_alerts_at_once() -> None:
    assert debounce([breach("x")], [], DebounceParams(breaches=1, windows=1)) == [breach("x")]
