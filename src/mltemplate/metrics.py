"""The learning tasks params.yaml may name, each task's metrics with the direction in which they improve, the one
scorer (`scores`) that `evaluate`, the monitor and the report call, and the one reader of metrics.json."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
