"""The one gate on fixed inputs: thresholds (floors and ceilings), slice gaps, and the tolerance on the intervals of a
comparison with the base on the same rows, overall and per group."""

from __future__ import annotations

from typing import Any

import pytest

from mltemplate.comparison import MIN_ROWS, Comparison, Difference, Group
from mltemplate.gate import allowed_shortfall, judge, threshold, tolerance
from mltemplate.params import EvaluateParams

BASE = {"accuracy": 0.95, "recall": 0.93, "f1": 0.94, "log_loss": 0.10, "support": {"a": 90, "b": 53}}
THRESHOLDS = {"accuracy": 0.90, "recall": 0.90, "f1": 0.90}


def policy(**fields: Any) -> EvaluateParams:
    return EvaluateParams.model_validate(fields)


def reasons(metrics: dict[str, Any], rules: EvaluateParams, comparison: Comparison | None = None) -> list[str]:
    return [c.reason() for c in judge(metrics, rules, comparison=comparison).failed]


def compared(*differences: Difference, groups: tuple[Group, ...] = ()) -> Comparison:
    """A comparison with the base on the same rows (as mltemplate.comparison.compare makes one)."""
    return Comparison(rows=200, differences=differences, groups=groups)


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


def test_the_gate_names_the_metric_below_its_threshold_and_by_how_much() -> None:
    pr = {**BASE, "recall": 0.88}
    assert reasons(pr, policy(thresholds=THRESHOLDS, tolerance=0.02)) == [
        "recall 0.8800 is below its threshold 0.9000 by 0.0200"
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


# --- the tolerance, on the intervals of a comparison with the base --------------------------------------------


def worse(metric: str, base: float, low: float, high: float) -> Difference:
    """`metric` of the candidate against `base`, the difference's interval [low, high] (candidate - base)."""
    return Difference(metric, base, base + (low + high) / 2, low, high)


def test_the_gate_passes_within_thresholds_and_tolerance() -> None:
    pr = {"accuracy": 0.94, "recall": 0.92, "f1": 0.935, "log_loss": 0.5}
    found = compared(worse("accuracy", 0.95, -0.03, -0.005), worse("log_loss", 0.1, -0.02, 0.4))
    assert judge(pr, policy(thresholds=THRESHOLDS, tolerance=0.02), comparison=found).passed


@pytest.mark.parametrize(
    "difference",
    [
        worse("accuracy", 0.9, -0.2, 0.01),
        worse("roc_auc", 0.95, -0.001, 0.0),
        worse("rmse", 4.0, -0.1, 3.0),  # an error: the candidate's may be far higher, or a little lower
        worse("log_loss", 0.2, 0.0, 0.5),
        worse("r2", 0.7, -0.5, 0.02),
    ],
    ids=lambda d: d.metric,
)
def test_a_difference_within_noise_never_fails_even_with_no_tolerance(difference: Difference) -> None:
    assert difference.verdict == "no measurable difference"
    assert judge({}, policy(tolerance=0.0), comparison=compared(difference)).passed


def test_a_confidently_worse_metric_beyond_the_tolerance_fails_naming_it() -> None:
    found = compared(worse("accuracy", 0.9, -0.15, -0.05), worse("f1", 0.9, -0.02, 0.01))
    assert reasons({}, policy(tolerance=0.02), found) == [
        "accuracy is confidently worse than the base: 0.9000 -> 0.8000, the 95% interval of the difference is "
        "[-0.1500, -0.0500], beyond the tolerance of 0.0200"
    ]


def test_a_confidently_worse_metric_within_the_tolerance_passes() -> None:
    difference = worse("accuracy", 0.9, -0.03, -0.01)
    assert difference.verdict == "worse"
    assert judge({}, policy(tolerance=0.02), comparison=compared(difference)).passed


@pytest.mark.parametrize(("high", "passed"), [(-0.02, True), (-0.0200000001, True), (-0.021, False)])
def test_tolerance_ignores_float_noise_at_its_limit(high: float, passed: bool) -> None:
    found = compared(worse("accuracy", 0.9, -0.1, high))
    assert judge({}, policy(tolerance=0.02), comparison=found).passed is passed


@pytest.mark.parametrize("name", ["rmse", "mae", "mape", "log_loss"])
def test_an_error_s_tolerance_is_relative_to_the_base_s_value(name: str) -> None:
    rules = policy(tolerance=0.05)  # 5% more error than the base's
    assert allowed_shortfall(name, 10.0, 0.05) == pytest.approx(0.5)
    assert judge({}, rules, comparison=compared(worse(name, 10.0, 0.4, 2.0))).passed  # 4% more at least
    assert not judge({}, rules, comparison=compared(worse(name, 10.0, 0.6, 2.0))).passed  # 6% more at least
    assert not judge(
        {}, rules, comparison=compared(worse(name, 1.0, 0.06, 0.2))
    ).passed  # the same 6% of a smaller base


def test_r2_s_tolerance_is_in_its_own_units() -> None:
    rules = policy(tolerance=0.05)
    assert allowed_shortfall("r2", 0.5, 0.05) == allowed_shortfall("r2", 0.9, 0.05) == 0.05
    assert judge({}, rules, comparison=compared(worse("r2", 0.8, -0.2, -0.04))).passed
    assert reasons({}, rules, compared(worse("r2", 0.8, -0.2, -0.06))) == [
        "r2 is confidently worse than the base: 0.8000 -> 0.6700, the 95% interval of the difference is "
        "[-0.2000, -0.0600], beyond the tolerance of 0.0500"
    ]


def test_a_confidently_better_candidate_passes() -> None:
    found = compared(worse("accuracy", 0.8, 0.05, 0.1), worse("rmse", 3.0, -1.0, -0.5))
    assert {d.verdict for d in found.differences} == {"better"}
    assert judge({}, policy(tolerance=0.0), comparison=found).passed


def test_a_group_confidently_worse_fails_even_when_the_metric_improved_overall() -> None:
    groups = (
        Group("sex", "F", 60, (worse("recall", 0.9, -0.3, -0.1),)),
        Group("sex", "M", 140, (worse("recall", 0.8, 0.1, 0.2),)),
    )
    found = compared(worse("recall", 0.85, 0.01, 0.08), groups=groups)
    verdict = judge({}, policy(slices=["sex"], tolerance=0.02), comparison=found)
    assert [c.metric for c in verdict.failed] == ["slices.sex.F.recall"]
    assert [c.metric for c in verdict.of("tolerance")] == ["recall", "slices.sex.F.recall", "slices.sex.M.recall"]
    assert verdict.failed[0].reason().startswith("slices.sex.F.recall is confidently worse than the base: 0.9000")


def test_a_group_too_small_is_not_judged() -> None:
    small = Group("sex", "X", MIN_ROWS - 1, (worse("recall", 0.9, -0.5, -0.3),))
    verdict = judge({}, policy(slices=["sex"], tolerance=0.0), comparison=compared(groups=(small,)))
    assert not small.judged
    assert verdict.criteria == ()
    assert verdict.passed


def test_only_the_policy_s_slice_columns_are_judged() -> None:
    group = Group("region", "north", 80, (worse("recall", 0.9, -0.5, -0.3),))
    assert judge({}, policy(slices=["sex"]), comparison=compared(groups=(group,))).passed
    assert not judge({}, policy(slices=["region"]), comparison=compared(groups=(group,))).passed


def test_an_interval_undefined_in_some_resamples_is_not_judged() -> None:
    nan = float("nan")
    found = compared(Difference("roc_auc", 0.9, 0.5, nan, nan))
    assert judge({}, policy(tolerance=0.0), comparison=found).criteria == ()


def test_without_a_comparison_only_the_thresholds_apply() -> None:
    pr = {"recall": 0.80}
    assert reasons(pr, policy(thresholds={"recall": 0.9}, tolerance=0.02)) == [
        "recall 0.8000 is below its threshold 0.9000 by 0.1000"
    ]
    assert judge(pr, policy(tolerance=0.0)).passed
    assert judge(pr, policy(tolerance=0.0), comparison=Comparison(reason="the base could not be had")).passed
    assert not judge(pr, policy(tolerance=0.0), comparison=compared(worse("recall", 0.95, -0.2, -0.1))).passed


def test_the_verdict_keeps_the_comparison_it_judged() -> None:
    found = compared(worse("accuracy", 0.9, -0.01, 0.01))
    assert judge({}, policy(), comparison=found).comparison is found


def test_a_tolerance_criterion_is_the_least_shortfall_under_the_allowed_one() -> None:
    rule = tolerance(worse("rmse", 2.0, 0.3, 0.9), 0.1, name="slices.sex.F.rmse")
    assert (rule.kind, rule.metric, rule.value, rule.limit, rule.higher_is_better) == (
        "tolerance",
        "slices.sex.F.rmse",
        0.3,
        pytest.approx(0.2),
        False,
    )
    assert not rule.passed
