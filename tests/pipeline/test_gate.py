from __future__ import annotations

from mltemplate.pipeline.gate import check, check_gaps


def test_metric_at_threshold_passes() -> None:
    assert [c.passed for c in check({"recall": 0.9}, {"recall": 0.9})] == [True]


def test_metric_below_threshold_fails() -> None:
    (result,) = check({"recall": 0.89}, {"recall": 0.9})
    assert not result.passed


def test_missing_metric_fails() -> None:
    (result,) = check({}, {"f1": 0.5})
    assert result.value is None
    assert not result.passed


def test_a_threshold_on_a_lower_is_better_metric_is_a_ceiling() -> None:
    (under,) = check({"rmse": 3.9}, {"rmse": 4.0})
    (over,) = check({"rmse": 4.1}, {"rmse": 4.0})
    assert (under.passed, over.passed) == (True, False)
    assert over.reason() == "rmse 4.1000 is above its ceiling 4.0000 by 0.1000"


def test_a_slice_gap_beyond_its_limit_fails_per_column() -> None:
    metrics = {"slice_gap": {"sex": {"recall": 0.15}, "age_band": {"recall": 0.05}}}
    checks = {c.metric: c.passed for c in check_gaps(metrics, {"recall": 0.1})}
    assert checks == {"slice_gap.sex.recall": False, "slice_gap.age_band.recall": True}


def test_a_slice_gap_limit_without_slice_metrics_fails_as_missing() -> None:
    (result,) = check_gaps({"recall": 0.9}, {"recall": 0.1})
    assert result.value is None
    assert not result.passed
