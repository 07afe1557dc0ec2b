"""Model quality on labelled production records: the metrics `evaluate` reports, each against its floor in
params.yaml `monitor.thresholds`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn import metrics

from mltemplate.monitoring.alerts import Check


def scores(
    truth: Sequence[str], predicted: Sequence[str], positive_scores: Sequence[float], positive: str
) -> dict[str, float]:
    """accuracy, precision, recall, F1 of the positive class, and ROC AUC when both classes occur in `truth`."""
    y_true = np.asarray(truth) == positive
    y_pred = np.asarray(predicted) == positive
    out = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "precision": float(metrics.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(metrics.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(metrics.f1_score(y_true, y_pred, zero_division=0)),
    }
    if 0 < y_true.sum() < len(y_true):
        out["roc_auc"] = float(metrics.roc_auc_score(y_true, np.asarray(positive_scores, dtype=float)))
    return out


def quality_checks(values: Mapping[str, float], thresholds: Mapping[str, float]) -> list[Check]:
    """One check per metric that has a floor; a metric that could not be computed is left out."""
    return [
        Check("quality", name, "floor", values[name], floor, breached=values[name] < floor)
        for name, floor in thresholds.items()
        if name in values
    ]
