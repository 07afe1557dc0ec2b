"""comparison.py: the seeded paired bootstrap intervals of two models' difference on the same rows, overall and per
group, and the comparison as data."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mltemplate import comparison, metrics
from mltemplate.comparison import (
    MIN_ROWS,
    Comparison,
    ComparisonError,
    Difference,
    Group,
    Scored,
    compare,
    differences,
)


def answers(task: metrics.Task, n: int, seed: int = 0) -> tuple[np.ndarray, Scored, Scored, str | None]:
    """Labels (or targets) of `n` rows, a good model's answers on them and a clearly worse model's (noise)."""
    rng = np.random.default_rng(seed)
    if task == "regression":
        actual = rng.normal(10, 2, n)
        return actual, Scored(actual + rng.normal(0, 0.3, n), ()), Scored(actual + rng.normal(0, 3, n), ()), None
    classes = ("no", "yes") if task == "binary" else ("a", "b", "c")
    actual = rng.choice(classes, n)
    truth = (actual[:, None] == np.array(classes)[None, :]).astype(np.float64)
    good = 0.8 * truth + 0.2 * rng.dirichlet(np.ones(len(classes)), n)
    bad = rng.dirichlet(np.ones(len(classes)), n)
    return actual, Scored(good, classes), Scored(bad, classes), "yes" if task == "binary" else None


# --- how they differ ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "low", "high", "verdict"),
    [
        ("accuracy", 0.01, 0.05, "better"),
        ("accuracy", -0.05, -0.01, "worse"),
        ("log_loss", -0.1, -0.02, "better"),
        ("log_loss", 0.02, 0.1, "worse"),
        ("rmse", -1.0, -0.5, "better"),
        ("r2", -0.1, -0.05, "worse"),
        ("f1_macro", 0.05, 0.1, "better"),
        ("slices.sex.F.rmse", 0.5, 1.0, "worse"),
        ("accuracy", -0.02, 0.03, "no measurable difference"),
        ("rmse", 0.0, 0.0, "no measurable difference"),
        ("roc_auc", math.nan, math.nan, "too few rows"),
    ],
)
def test_a_difference_s_verdict_follows_the_metric_s_direction(
    name: str, low: float, high: float, verdict: str
) -> None:
    assert Difference(name, 1.0, 1.0 + (low + high) / 2, low, high).verdict == verdict


@pytest.mark.parametrize("task", metrics.TASKS)
def test_identical_models_differ_by_nothing_with_zero_width_intervals(task: metrics.Task) -> None:
    actual, good, _, positive = answers(task, 120)
    found = differences(task, actual, good, good, positive, seed=0, resamples=200)
    assert [d.metric for d in found] == metrics.names(task)
    assert all(d.delta == d.low == d.high == 0 for d in found)
    assert {d.verdict for d in found} == {"no measurable difference"}


@pytest.mark.parametrize("task", metrics.TASKS)
def test_a_clearly_worse_model_is_worse_with_an_interval_that_excludes_zero(task: metrics.Task) -> None:
    actual, good, bad, positive = answers(task, 200)
    found = differences(task, actual, good, bad, positive, seed=0, resamples=300)
    assert {d.metric: d.verdict for d in found} == {name: "worse" for name in metrics.names(task)}
    for d in found:
        assert d.improvement[1] < 0  # even the interval's best end is worse
        assert d.low <= d.delta <= d.high


def test_a_clearly_better_model_is_better() -> None:
    actual, good, bad, positive = answers("binary", 200)
    found = differences("binary", actual, bad, good, positive, seed=0, resamples=300)
    assert {d.verdict for d in found} == {"better"}


@pytest.mark.parametrize("task", metrics.TASKS)
def test_the_same_inputs_and_seed_give_the_same_intervals(task: metrics.Task) -> None:
    actual, good, bad, positive = answers(task, 100)
    first = compare(task, actual, good, bad, positive, seed=3, resamples=200)
    assert compare(task, actual, good, bad, positive, seed=3, resamples=200) == first
    other = compare(task, actual, good, bad, positive, seed=4, resamples=200)
    assert [(d.low, d.high) for d in other.differences] != [(d.low, d.high) for d in first.differences]
    assert [d.delta for d in other.differences] == [d.delta for d in first.differences]  # the values do not move


def test_fewer_than_min_rows_give_a_reason_not_numbers() -> None:
    actual, good, bad, positive = answers("binary", MIN_ROWS - 1)
    found = compare("binary", actual, good, bad, positive, seed=0)
    assert not found.available
    assert found.differences == ()
    assert str(found.reason).startswith(
        f"only {MIN_ROWS - 1} held-out rows neither model was trained on; {MIN_ROWS} are needed"
    )


def test_a_group_under_min_rows_is_marked_and_not_judged() -> None:
    n = 100
    actual, good, bad, positive = answers("binary", n)
    site = ["big"] * (n - MIN_ROWS) + ["small"] * (MIN_ROWS - 1) + [None]
    found = compare("binary", actual, good, bad, positive, seed=0, groups=pd.DataFrame({"site": site}), resamples=100)
    by_value = {g.value: g for g in found.groups}
    assert {value: (g.rows, g.judged) for value, g in by_value.items()} == {
        "big": (n - MIN_ROWS, True),
        "small": (MIN_ROWS - 1, False),
        "(missing)": (1, False),
    }
    assert by_value["small"].differences == ()
    assert [d.metric for d in by_value["big"].differences] == metrics.names("binary")
    assert {g.column for g in found.groups} == {"site"}


def test_more_than_max_rows_are_compared_on_a_seeded_sample_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comparison, "MAX_ROWS", 60)
    actual, good, bad, positive = answers("regression", 100)
    groups = pd.DataFrame({"half": ["a", "b"] * 50})
    found = compare("regression", actual, good, bad, positive, seed=1, groups=groups, resamples=100)
    assert found.rows == 60
    assert found.notes == ("compared on a seeded sample of 60 of the 100 shared rows",)
    assert sum(g.rows for g in found.groups) == 60
    assert compare("regression", actual, good, bad, positive, seed=1, groups=groups, resamples=100) == found


def test_a_class_the_base_does_not_know_is_refused_by_name() -> None:
    actual, good, bad, _ = answers("multiclass", 60)
    base = Scored(good.output[:, :2] / good.output[:, :2].sum(axis=1, keepdims=True), ("a", "b"))
    with pytest.raises(ComparisonError, match="the base model does not know class 'c'"):
        differences("multiclass", actual, base, bad, None, seed=0)


def test_a_comparison_round_trips_through_json_with_undefined_interval_ends() -> None:
    nan = math.nan
    original = Comparison(
        rows=40,
        differences=(Difference("accuracy", 0.9, 0.85, -0.1, -0.01), Difference("roc_auc", 0.95, 0.9, nan, nan)),
        groups=(Group("site", "north", 25, (Difference("accuracy", 0.8, 0.9, nan, 0.2),)), Group("site", "x", 3)),
        seed=7,
        resamples=500,
        notes=("a note",),
    )
    raw = original.to_dict()
    text = json.dumps(raw, allow_nan=False)  # null, not NaN: valid JSON
    back = Comparison.from_dict(json.loads(text))
    assert back.to_dict() == raw
    assert [d.measurable for d in back.differences] == [True, False]
    assert back.groups[0].differences[0].verdict == "too few rows"
    assert (back.rows, back.seed, back.resamples, back.notes) == (40, 7, 500, ("a note",))
    assert Comparison.from_dict(Comparison(reason="no base").to_dict()).reason == "no base"
