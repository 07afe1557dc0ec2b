"""The task metrics, their directions, the scorer and the one metrics.json reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mltemplate import metrics


def test_missing_metrics_say_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(metrics.MetricsError, match=r"run `make run`"):
        metrics.read_metrics(tmp_path / "metrics.json")


def test_a_metrics_file_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("[1, 2]")
    with pytest.raises(metrics.MetricsError, match="expected a JSON object, got list"):
        metrics.read_metrics(tmp_path / "metrics.json")


def test_scalar_metrics_flatten_groups_and_leave_out_support() -> None:
    found = {"accuracy": 0.9, "support": {"a": 3}, "group": {"f1": 1}, "note": "x", "flag": True}
    assert metrics.scalar_metrics(found) == {"accuracy": 0.9, "group.f1": 1.0}


@pytest.mark.parametrize(
    ("name", "sign"),
    [("accuracy", 1), ("log_loss", -1), ("rmse", -1), ("r2", 1), ("slices.sex.F.rmse", -1), ("slice_gap.x.f1", -1)],
)
def test_direction_follows_the_metric_and_gaps_are_lower_is_better(name: str, sign: int) -> None:
    assert metrics.direction(name) == sign


def test_an_unknown_metric_has_no_direction() -> None:
    assert metrics.direction("brier") == 0


@pytest.mark.parametrize("task", metrics.TASKS)
def test_scores_write_every_metric_of_the_task(task: metrics.Task) -> None:
    rng = np.random.default_rng(0)
    if task == "regression":
        actual = rng.normal(10, 2, 50)
        found = metrics.scores(task, actual, actual + rng.normal(0, 1, 50), [])
    else:
        classes = ["a", "b"] if task == "binary" else ["a", "b", "c"]
        actual = rng.choice(classes, 60)
        probabilities = rng.dirichlet(np.ones(len(classes)), 60)
        found = metrics.scores(task, actual, probabilities, classes, "b" if task == "binary" else None)
    assert list(found) == metrics.names(task)


def test_scores_leave_out_what_the_rows_do_not_define() -> None:
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2]])
    assert "roc_auc" not in metrics.scores("binary", np.array(["a", "a"]), probabilities, ["a", "b"], "b")
    assert "mape" not in metrics.scores("regression", np.array([0.0, 1.0]), np.array([0.1, 1.1]), [])
