from __future__ import annotations

from mltemplate.pipeline.gate import check


def test_metric_at_threshold_passes() -> None:
    assert [c.passed for c in check({"recall": 0.9}, {"recall": 0.9})] == [True]


def test_metric_below_threshold_fails() -> None:
    (result,) = check({"recall": 0.89}, {"recall": 0.9})
    assert not result.passed


def test_missing_metric_fails() -> None:
    (result,) = check({}, {"f1": 0.5})
    assert result.value is None
    assert not result.passed
