"""Quality on labelled records: the metrics, their floors, and which breaches become alerts."""

from __future__ import annotations

import pytest

from mltemplate.monitoring.alerts import Check, debounce
from mltemplate.monitoring.quality import quality_checks, scores
from mltemplate.params import DebounceParams


def test_scores_are_about_the_positive_class() -> None:
    values = scores(["yes", "yes", "no", "no"], ["yes", "no", "no", "yes"], [0.9, 0.4, 0.1, 0.6], "yes")
    assert values == {"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "roc_auc": 0.75}


def test_roc_auc_is_left_out_when_one_class_is_missing() -> None:
    assert "roc_auc" not in scores(["yes", "yes"], ["yes", "no"], [0.9, 0.4], "yes")


def test_a_metric_below_its_floor_breaches_and_one_without_a_floor_is_not_checked() -> None:
    checks = quality_checks({"recall": 0.6, "accuracy": 0.95, "f1": 0.7}, {"recall": 0.8, "accuracy": 0.9})
    assert [(c.name, c.breached) for c in checks] == [("recall", True), ("accuracy", False)]
    assert checks[0].describe() == "quality recall: floor 0.6 < 0.8"


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
