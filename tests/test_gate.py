from __future__ import annotations

from pathlib import Path

import pytest

from mltemplate.cli import CommandError
from mltemplate.gate import check, read_metrics


def test_metric_at_threshold_passes() -> None:
    assert [c.passed for c in check({"recall": 0.9}, {"recall": 0.9})] == [True]


def test_metric_below_threshold_fails() -> None:
    (result,) = check({"recall": 0.89}, {"recall": 0.9})
    assert not result.passed


def test_missing_metric_fails() -> None:
    (result,) = check({}, {"f1": 0.5})
    assert result.value is None
    assert not result.passed


def test_missing_metrics_file_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"run `make run`"):
        read_metrics(tmp_path / "metrics.json")
