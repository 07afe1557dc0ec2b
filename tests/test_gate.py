"""The one gate on fixed inputs: thresholds (floors and ceilings), slice gaps, tolerance against a base."""

from __future__ import annotations

from typing import Any

import pytest

from mltemplate.gate import judge, threshold
from mltemplate.params import EvaluateParams

BASE = {"accuracy": 0.95, "recall": 0.93, "f1": 0.94, "log_loss": 0.10, "support": {"a": 90, "b": 53}}
THRESHOLDS = {"accuracy": 0.90, "recall": 0.90, "f1": 0.90}


def policy(**fields: Any) -> EvaluateParams:
    return EvaluateParams.model_validate(fields)


def reasons(metrics: dict[str, Any], rules: EvaluateParams, base: dict[str, Any] | None = None) -> list[str]:
    return [c.reason() for c in judge(metrics, rules, base=base).failed]


def test_metric_at_threshold_passes() -> None:
    assert threshold("recall", 0.9, 0.9).passed


def test_metric_below_threshold_fails() -> None:
    assert not threshold("recall", 0.89, 0.9).passed


def test_missing_metric_fails() -> None:
    (result,) = judge({}, policy(thresholds={"f1": 0.5})).criteria
    assert result.value is None
    assert not result.passed
    assert result.reason() == "f1 is missing from the metrics"


def test_a_threshold_on_a_lower_is_better_metric_is_a_ceiling() -> None:
    under, over = threshold("rmse", 3.9, 4.0), threshold("rmse", 4.1, 4.0)
    assert (under.passed, over.passed) == (True, False)
    assert (under.bound, over.bound) == ("≤", "≤")
    assert over.reason() == "rmse 4.1000 is above its ceiling 4.0000 by 0.1000"


def test_the_gate_passes_within_thresholds_and_tolerance() -> None:
    pr = {"accuracy": 0.94, "recall": 0.92, "f1": 0.935, "log_loss": 0.5}
    assert judge(pr, policy(thresholds=THRESHOLDS, tolerance=0.02), base=BASE).passed


def test_the_gate_names_the_metric_below_its_threshold_and_by_how_much() -> None:
    pr = {**BASE, "recall": 0.88}
    assert reasons(pr, policy(thresholds=THRESHOLDS, tolerance=0.02)) == [
        "recall 0.8800 is below its threshold 0.9000 by 0.0200"
    ]


def test_the_gate_fails_a_drop_against_base_beyond_the_tolerance() -> None:
    pr = {**BASE, "f1": 0.91}
    assert reasons(pr, policy(thresholds=THRESHOLDS, tolerance=0.02), BASE) == [
        "f1 fell 0.0300 behind the base (0.9400 -> 0.9100); the tolerance is 0.0200"
    ]


def test_tolerance_leaves_lower_is_better_and_unknown_metrics_alone() -> None:
    pr = {**BASE, "log_loss": 0.9, "brier": 0.9}
    assert judge(pr, policy(thresholds=THRESHOLDS, tolerance=0.0), base={**BASE, "brier": 0.1}).passed


def test_without_a_base_only_the_thresholds_apply() -> None:
    base, pr = {"recall": 0.95}, {"recall": 0.80}
    assert reasons(pr, policy(thresholds={"recall": 0.9}, tolerance=0.02)) == [
        "recall 0.8000 is below its threshold 0.9000 by 0.1000"
    ]
    assert judge(pr, policy(tolerance=0.02)).passed
    assert not judge(pr, policy(tolerance=0.02), base=base).passed  # on the same rows, the drop counts


def test_tolerance_gates_r2_but_not_rmse() -> None:
    base, pr = {"r2": 0.8, "rmse": 1.0}, {"r2": 0.7, "rmse": 9.0}
    assert reasons(pr, policy(tolerance=0.05), base) == [
        "r2 fell 0.1000 behind the base (0.8000 -> 0.7000); the tolerance is 0.0500"
    ]


def test_a_slice_gap_beyond_its_limit_fails_per_column() -> None:
    metrics = {"slice_gap": {"sex": {"recall": 0.15}, "age_band": {"recall": 0.05}}}
    verdict = judge(metrics, policy(slices=["sex", "age_band"], max_slice_gap={"recall": 0.1}))
    assert {c.metric: c.passed for c in verdict.of("slice_gap")} == {
        "slice_gap.sex.recall": False,
        "slice_gap.age_band.recall": True,
    }
    assert [c.reason() for c in verdict.failed] == [
        "slice_gap.sex.recall 0.1500 is above its largest allowed gap 0.1000 by 0.0500"
    ]


def test_slice_gaps_read_flattened_metrics_too() -> None:
    verdict = judge({"slice_gap.sex.recall": 0.2}, policy(slices=["sex"], max_slice_gap={"recall": 0.1}))
    assert [c.metric for c in verdict.failed] == ["slice_gap.sex.recall"]


def test_a_slice_gap_limit_without_slice_metrics_fails_as_missing() -> None:
    (result,) = judge({"recall": 0.9}, policy(slices=["sex"], max_slice_gap={"recall": 0.1})).criteria
    assert result.value is None
    assert not result.passed


def test_names_in_a_verdict_come_from_the_policy_not_from_the_metrics() -> None:
    hostile = {"slice_gap": {"sex`@someone": {"recall": 0.9}}, "accuracy`<img>": 0.1}
    verdict = judge(hostile, policy(slices=["sex"], max_slice_gap={"recall": 0.1}, thresholds={"accuracy": 0.5}))
    assert {c.metric for c in verdict.criteria} == {"accuracy", "slice_gap.sex.recall"}


@pytest.mark.parametrize(("value", "passed"), [(0.02, True), (0.0200000001, True), (0.021, False)])
def test_tolerance_ignores_float_noise_at_its_limit(value: float, passed: bool) -> None:
    base, pr = {"accuracy": 0.9}, {"accuracy": 0.9 - value}
    assert judge(pr, policy(tolerance=0.02), base=base).passed is passed
