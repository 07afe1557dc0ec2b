"""The learning tasks params.yaml may name, each task's metrics with the direction in which they improve, the one
scorer (`scores`) that `evaluate`, the monitor and the report call, and the one reader of metrics.json."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from mltemplate.dotted import flatten
from mltemplate.errors import Error
from mltemplate.paths import METRICS_FILE

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")


def is_classification(task: Task) -> bool:
    return task != "regression"


DIGITS = 6
"""Metrics (and plot points) are rounded so that last-bit float noise across machines does not show as a change."""


@dataclass(frozen=True)
class Metric:
    """A metric's name, whether higher is better, and whether it lies in [0, 1] (then a threshold must too, and
    `evaluate.tolerance`, an absolute drop, means the same for any data set)."""

    name: str
    higher_is_better: bool
    unit_interval: bool

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is better."""
        return 1 if self.higher_is_better else -1

    def meets(self, value: float, limit: float) -> bool:
        """A limit is a floor for a higher-is-better metric and a ceiling otherwise."""
        return value >= limit if self.higher_is_better else value <= limit

    @property
    def bound(self) -> str:
        """How a limit reads: `≥` for a floor, `≤` for a ceiling."""
        return "≥" if self.higher_is_better else "≤"


def _higher(name: str) -> Metric:
    return Metric(name, higher_is_better=True, unit_interval=True)


def _lower(name: str) -> Metric:
    return Metric(name, higher_is_better=False, unit_interval=False)


METRICS: dict[Task, tuple[Metric, ...]] = {
    "binary": (*map(_higher, ("accuracy", "precision", "recall", "f1", "roc_auc")), _lower("log_loss")),
    "multiclass": (
        *map(_higher, ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted")),
        _lower("log_loss"),
    ),
    # r2 is at most 1 but unbounded below; an absolute tolerance on it still reads the same across data sets.
    "regression": (
        _lower("rmse"),
        _lower("mae"),
        Metric("r2", higher_is_better=True, unit_interval=False),
        _lower("mape"),
    ),
}
"""Every scalar metric `evaluate` writes for each task, in the order it writes them."""

ALL_METRICS: dict[str, Metric] = {m.name: m for metrics in METRICS.values() for m in metrics}

SLICES = "slices"
"""metrics.json group of the per-group metrics: slices.<column>.<group>.<metric>."""
SLICE_GAP = "slice_gap"
"""metrics.json group of the largest gap between the groups of each slice column: slice_gap.<column>.<metric>
(lower is better)."""
SUPPORT = "support"
"""metrics.json group of the held-out rows per class (classification): counts, not metrics."""

IMPORTANCE_SCORING: dict[Task, str] = {
    "binary": "roc_auc",
    "multiclass": "f1_macro",
    "regression": "neg_root_mean_squared_error",
}
"""The scikit-learn scorer whose drop permutation importance measures (for regression: the rise in RMSE)."""


def metric(name: str) -> Metric | None:
    """The metric named `name`, or the one a dotted key ends with (`slices.sex.F.rmse`); None if unknown."""
    return ALL_METRICS.get(name) or ALL_METRICS.get(name.rsplit(".", 1)[-1])


def names(task: Task) -> list[str]:
    return [m.name for m in METRICS[task]]


def direction(name: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 for a metric no task names. Per-group metrics
    (`slices.sex.F.rmse`) go the way of their metric; gaps between groups (`slice_gap.*`) are lower-is-better."""
    if name.startswith(f"{SLICE_GAP}."):
        return -1
    found = metric(name)
    return 0 if found is None else found.sign


def scores(
    task: Task, actual: np.ndarray, output: np.ndarray, classes: Sequence[str], positive: str | None = None
) -> dict[str, float]:
    """The task's metrics (METRICS) of `output` (class probabilities in `classes` order, or predicted numbers)
    against `actual` (labels as text, or numbers), rounded to DIGITS. A metric that is not defined on these rows
    (roc_auc over one class, mape with a zero target, r2 of one row) is left out rather than guessed."""
    values: dict[str, Any] = {}
    if task == "regression":
        actual = np.asarray(actual, dtype=np.float64)
        output = np.asarray(output, dtype=np.float64).reshape(-1)
        values["rmse"] = root_mean_squared_error(actual, output)
        values["mae"] = mean_absolute_error(actual, output)
        if len(actual) > 1:
            values["r2"] = r2_score(actual, output)
        if not np.any(actual == 0):
            values["mape"] = mean_absolute_percentage_error(actual, output)
    else:
        labels = list(classes)
        actual = np.asarray(actual, dtype=object)
        output = np.asarray(output, dtype=np.float64)
        predicted = np.asarray(labels)[np.argmax(output, axis=1)]
        values["accuracy"] = accuracy_score(actual, predicted)
        if task == "binary":
            values["precision"] = precision_score(actual, predicted, pos_label=positive, zero_division=0)
            values["recall"] = recall_score(actual, predicted, pos_label=positive, zero_division=0)
            values["f1"] = f1_score(actual, predicted, pos_label=positive, zero_division=0)
            is_positive = actual == positive
            if 0 < is_positive.sum() < len(actual):
                values["roc_auc"] = roc_auc_score(is_positive, output[:, labels.index(str(positive))])
        else:
            macro = {"labels": labels, "average": "macro", "zero_division": 0}
            values["precision_macro"] = precision_score(actual, predicted, **macro)
            values["recall_macro"] = recall_score(actual, predicted, **macro)
            values["f1_macro"] = f1_score(actual, predicted, **macro)
            values["f1_weighted"] = f1_score(actual, predicted, labels=labels, average="weighted", zero_division=0)
        values["log_loss"] = log_loss(actual, output, labels=labels)
    return {key: round(float(value), DIGITS) for key, value in values.items()}


class MetricsError(Error, ValueError):
    """metrics.json is missing or is not the JSON object `evaluate` writes."""


def parse_metrics(text: str | bytes, *, source: Path = METRICS_FILE) -> dict[str, Any]:
    """metrics.json's text as the mapping `evaluate` wrote; MetricsError when it is not a JSON object."""
    try:
        found = json.loads(text)
    except ValueError as error:
        raise MetricsError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(found, dict):
        raise MetricsError(f"{source}: expected a JSON object, got {type(found).__name__}")
    return found


def read_metrics(path: Path = METRICS_FILE) -> dict[str, Any]:
    """metrics.json as written by the evaluate stage."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MetricsError(f"{path} not found: run `make run` (or `dvc repro`) first") from None
    return parse_metrics(text, source=path)


def scalar_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """The numeric metrics, flattened (nested groups as dotted keys); the per-class counts (`support`) are kept out."""
    return {
        key: float(value)
        for key, value in flatten(metrics or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool) and not key.startswith(f"{SUPPORT}.")
    }


Draws = np.ndarray
"""Bootstrap resamples as row indices: resamples x rows (each row of it draws len(rows) indices with replacement)."""


def counts(draws: Draws, rows: int) -> np.ndarray:
    """How often each row is drawn in each resample: resamples x rows."""
    return np.stack([np.bincount(draw, minlength=rows) for draw in np.atleast_2d(draws)]).astype(np.float64)


def resampled_scorer(
    task: Task, actual: np.ndarray, output: np.ndarray, classes: Sequence[str], positive: str | None
) -> Callable[[Draws, np.ndarray], dict[str, np.ndarray]]:
    """`scores` on many bootstrap resamples at once: a function of the resamples' draws and their row counts
    (`counts`) that returns one unrounded value of each task metric per resample, NaN where a resample leaves a
    metric undefined. On the draw of every row once it equals `scores` (tests/test_metrics.py checks every metric
    of every task); what does not depend on the resample is computed once, here, so a thousand paired resamples
    cost a few matrix products instead of a few thousand calls to scikit-learn. A metric added to METRICS and
    `scores` without a vectorised form here is scored by `scores` on each resample instead (about a millisecond
    each: a second per thousand resamples), so a new metric is compared honestly from the first day."""
    fast = _vectorised(task, actual, output, classes, positive)
    wanted = names(task)

    def score(draws: Draws, w: np.ndarray) -> dict[str, np.ndarray]:
        out = fast(draws, w)
        missing = [name for name in wanted if name not in out]
        if missing:
            truth, found = np.asarray(actual), np.asarray(output)
            each = [scores(task, truth[draw], found[draw], classes, positive) for draw in np.atleast_2d(draws)]
            out.update({name: np.array([one.get(name, np.nan) for one in each]) for name in missing})
        return out

    return score


def _vectorised(
    task: Task, actual: np.ndarray, output: np.ndarray, classes: Sequence[str], positive: str | None
) -> Callable[[Draws, np.ndarray], dict[str, np.ndarray]]:
    if task == "regression":
        return _regression_scorer(np.asarray(actual, dtype=np.float64), np.asarray(output, dtype=np.float64))
    labels = [str(label) for label in classes]
    index = {label: i for i, label in enumerate(labels)}
    truth = np.array([index[str(label)] for label in actual], dtype=np.intp)  # KeyError: a class the model lacks
    probabilities = np.asarray(output, dtype=np.float64)
    predicted = np.argmax(probabilities, axis=1)
    hit = np.stack([(predicted == k) & (truth == k) for k in range(len(labels))], axis=1).astype(np.float64)
    said = np.stack([predicted == k for k in range(len(labels))], axis=1).astype(np.float64)
    was = np.stack([truth == k for k in range(len(labels))], axis=1).astype(np.float64)
    eps = np.finfo(np.float64).eps
    loss = -np.log(np.clip(probabilities[np.arange(len(truth)), truth], eps, 1 - eps))
    correct = (predicted == truth).astype(np.float64)
    auc = None
    if task == "binary":
        k = index[str(positive)]
        auc = _auc_weigher(probabilities[:, k], truth == k)

    def score(draws: Draws, w: np.ndarray) -> dict[str, np.ndarray]:
        total = w.sum(axis=1)
        tp, predicted_as, actually = w @ hit, w @ said, w @ was  # resamples x classes
        out: dict[str, np.ndarray] = {"accuracy": (w @ correct) / total}
        if auc is not None:
            k = index[str(positive)]
            out["precision"] = _ratio(tp[:, k], predicted_as[:, k])
            out["recall"] = _ratio(tp[:, k], actually[:, k])
            out["f1"] = _ratio(2 * tp[:, k], predicted_as[:, k] + actually[:, k])
            out["roc_auc"] = auc(draws)
        else:
            f1 = _ratio(2 * tp, predicted_as + actually)
            out["precision_macro"] = _ratio(tp, predicted_as).mean(axis=1)
            out["recall_macro"] = _ratio(tp, actually).mean(axis=1)
            out["f1_macro"] = f1.mean(axis=1)
            out["f1_weighted"] = _ratio((f1 * actually).sum(axis=1), actually.sum(axis=1))
        out["log_loss"] = (w @ loss) / total
        return out

    return score


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """top / bottom, 0 where bottom is 0 (scikit-learn's zero_division=0)."""
    safe = np.where(bottom > 0, bottom, 1.0)
    return np.where(bottom > 0, top / safe, 0.0)


def _regression_scorer(y: np.ndarray, predicted: np.ndarray) -> Callable[[Draws, np.ndarray], dict[str, np.ndarray]]:
    error = y - predicted.reshape(-1)
    squared, absolute = error**2, np.abs(error)
    centre = y - y.mean()  # shifted, so the variance is not the difference of two large numbers
    relative = absolute / np.maximum(np.abs(y), np.finfo(np.float64).eps) if not np.any(y == 0) else None

    def score(draws: Draws, w: np.ndarray) -> dict[str, np.ndarray]:
        total = w.sum(axis=1)
        sse = w @ squared
        out = {"rmse": np.sqrt(sse / total), "mae": (w @ absolute) / total}
        if len(y) > 1:
            mean = (w @ centre) / total
            spread = (w @ centre**2) - total * mean**2
            out["r2"] = np.where(spread > 0, 1 - sse / np.where(spread > 0, spread, 1.0), np.nan)
        if relative is not None:
            out["mape"] = (w @ relative) / total
        return out

    return score


def _auc_weigher(score: np.ndarray, positive: np.ndarray) -> Callable[[Draws], np.ndarray]:
    """ROC AUC of each resample: the Mann-Whitney statistic with ties counted half, as roc_auc_score's trapezoids
    give it; NaN for a resample without both classes. Rows are counted in score order straight from the draws
    (by each row's rank), so no resample's counts are ever reordered."""
    order = np.argsort(score, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    ranked = score[order]
    is_positive = positive[order]
    new_group = np.r_[True, ranked[1:] != ranked[:-1]]
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(ranked)] - 1
    tied = np.flatnonzero((ends - starts)[group] > 0)  # rows that share their score with another row
    first, last = starts[group[tied]], ends[group[tied]]

    def auc(draws: Draws) -> np.ndarray:
        w = counts(rank[np.atleast_2d(draws)], len(rank))  # counts in score order
        neg = np.where(is_positive, 0.0, w)
        through = np.cumsum(neg, axis=1)  # negatives at or below each row
        below = through - neg  # strictly below it (no other row shares its score)
        if len(tied):  # a tie counts half: the negatives before its group, and half of those within it
            start = through[:, first] - neg[:, first]
            below[:, tied] = start + 0.5 * (through[:, last] - start)
        area = (np.where(is_positive, w, 0.0) * below).sum(axis=1)
        pairs = (w * is_positive).sum(axis=1) * through[:, -1]
        return np.where(pairs > 0, area / np.where(pairs > 0, pairs, 1.0), np.nan)

    return auc
