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


Rows = tuple[np.ndarray, np.ndarray, list[str], str | None]
"""Labels (or targets), a model's output, the classes and the positive class."""


def task_rows(task: metrics.Task, n: int, seed: int = 0) -> Rows:
    """Labels (or targets) and a model's output for `n` rows of `task`; binary scores on a coarse grid, so that
    many rows tie (roc_auc counts a tie half)."""
    rng = np.random.default_rng(seed)
    if task == "regression":
        actual = rng.normal(10, 2, n)
        return actual, actual + rng.normal(0, 1, n), [], None
    if task == "binary":
        classes = ["no", "yes"]
        actual = rng.choice(classes, n)
        positive = np.clip((actual == "yes") * 0.3 + rng.integers(0, 8, n) / 10, 0, 1)
        return actual, np.column_stack([1 - positive, positive]), classes, "yes"
    classes = ["a", "b", "c"]
    actual = rng.choice(classes, n)
    probabilities = rng.dirichlet(np.ones(3), n)
    probabilities[np.arange(n), [classes.index(a) for a in actual]] += 0.5  # a better than random model
    return actual, probabilities / probabilities.sum(axis=1, keepdims=True), classes, None


def resampled(task: metrics.Task, draws: np.ndarray, rows: Rows) -> dict[str, np.ndarray]:
    actual, output, classes, positive = rows
    score = metrics.resampled_scorer(task, actual, output, classes, positive)
    return score(draws, metrics.counts(draws, len(actual)))


@pytest.mark.parametrize("task", metrics.TASKS)
def test_the_resampled_scorer_on_every_row_once_equals_scores(task: metrics.Task) -> None:
    rows = task_rows(task, 80)
    expected = metrics.scores(task, *rows)
    found = resampled(task, np.arange(80)[None, :], rows)
    assert list(expected) == metrics.names(task)  # every metric of the task is checked
    assert {name: round(float(found[name][0]), metrics.DIGITS) for name in expected} == pytest.approx(
        expected, abs=1e-6
    )


@pytest.mark.parametrize("task", metrics.TASKS)
def test_the_resampled_scorer_equals_scores_of_the_resampled_rows(task: metrics.Task) -> None:
    rows = task_rows(task, 60, seed=1)
    actual, output, classes, positive = rows
    draws = np.random.default_rng(2).integers(0, 60, (25, 60))
    found = resampled(task, draws, rows)
    if task == "binary":
        assert len(np.unique(output[:, 1])) < 60 / 4  # many ties in the scores roc_auc ranks
    for i, draw in enumerate(draws):
        expected = metrics.scores(task, actual[draw], output[draw], classes, positive)
        assert {name: float(found[name][i]) for name in expected} == pytest.approx(expected, abs=1e-6), i


def test_roc_auc_is_nan_where_a_resample_holds_one_class() -> None:
    actual = np.array(["yes", "yes", *["no"] * 8])
    output = np.column_stack([np.linspace(0.9, 0.1, 10), np.linspace(0.1, 0.9, 10)])
    draws = np.array([[2] * 10, list(range(10))])  # only negatives, then every row
    found = resampled("binary", draws, (actual, output, ["no", "yes"], "yes"))
    assert np.isnan(found["roc_auc"][0])
    assert np.isfinite(found["roc_auc"][1])
    assert "roc_auc" not in metrics.scores("binary", actual[draws[0]], output[draws[0]], ["no", "yes"], "yes")
    assert all(np.isfinite(values[0]) for name, values in found.items() if name != "roc_auc")
