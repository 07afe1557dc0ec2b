"""Model quality on labelled production records: the metrics `evaluate` reports for the task, computed by the same
scorer (mltemplate.metrics.scores) from the logged outputs, each judged by the gate's threshold rule against
`monitor.thresholds` (a floor for a metric where higher is better, a ceiling for an error such as rmse)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mltemplate import gate, metrics
from mltemplate.monitoring.alerts import Check


def scores(
    task: metrics.Task,
    truth: Sequence[str],
    outputs: np.ndarray,
    classes: Sequence[str],
    positive: str | None = None,
) -> dict[str, float]:
    """The task's metrics of the logged outputs (class probabilities in `classes` order, or the predicted numbers)
    against the true labels (text; numbers for regression). Metrics not defined on these rows (roc_auc over one
    class, mape with a zero target) are left out."""
    if task == "regression":
        actual = np.asarray([float(value) for value in truth], dtype=float)
        return metrics.scores(task, actual, np.asarray(outputs, dtype=float).reshape(-1), classes)
    return metrics.scores(task, np.asarray(truth, dtype=object), np.asarray(outputs, dtype=float), classes, positive)


def quality_checks(values: Mapping[str, float], thresholds: Mapping[str, float]) -> list[Check]:
    """One check per metric that has a threshold; a metric that could not be computed is left out."""
    checks = []
    for name, limit in thresholds.items():
        if name not in values:
            continue
        rule = gate.threshold(name, values[name], limit)
        checks.append(
            Check(
                "quality",
                name,
                "floor" if rule.higher_is_better else "ceiling",
                values[name],
                limit,
                breached=not rule.passed,
                higher_is_worse=not rule.higher_is_better,
            )
        )
    return checks
