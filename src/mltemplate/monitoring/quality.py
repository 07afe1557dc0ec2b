"""Model quality on labelled production records: the metrics `evaluate` reports for the task, computed by the same
function from the logged outputs, each against its threshold in params.yaml `monitor.thresholds` (a floor for a
metric where higher is better, a ceiling for an error such as rmse or log_loss)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mltemplate import tasks
from mltemplate.monitoring.alerts import Check
from mltemplate.pipeline.evaluate import scores as evaluate_scores


def scores(
    task: tasks.Task,
    truth: Sequence[str],
    outputs: np.ndarray,
    classes: Sequence[str],
    positive: str | None = None,
) -> dict[str, float]:
    """The task's metrics (tasks.METRICS) of the logged outputs (class probabilities in `classes` order, or the
    predicted numbers) against the true labels (text; numbers for regression). Metrics not defined on these rows
    (roc_auc over one class, mape with a zero target) are left out."""
    if task == "regression":
        actual = np.asarray([float(value) for value in truth], dtype=float)
        return evaluate_scores(task, actual, np.asarray(outputs, dtype=float).reshape(-1), classes)
    return evaluate_scores(task, np.asarray(truth, dtype=object), np.asarray(outputs, dtype=float), classes, positive)


def quality_checks(values: Mapping[str, float], thresholds: Mapping[str, float]) -> list[Check]:
    """One check per metric that has a threshold; a metric that could not be computed is left out."""
    checks = []
    for name, threshold in thresholds.items():
        if name not in values:
            continue
        metric = tasks.ALL_METRICS[name]
        checks.append(
            Check(
                "quality",
                name,
                "floor" if metric.higher_is_better else "ceiling",
                values[name],
                threshold,
                breached=not metric.meets(values[name], threshold),
                higher_is_worse=not metric.higher_is_better,
            )
        )
    return checks
