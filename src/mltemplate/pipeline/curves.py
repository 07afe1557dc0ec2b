"""The points of each plot the evaluate stage writes (plots/<name>.json, as mltemplate.plots lists them): curves
thinned to at most MAX_POINTS points, the confusion matrix as counts."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from mltemplate.metrics import DIGITS

MAX_POINTS = 500
"""Most points a curve keeps (see _thin); the confusion matrix is stored as counts for the same reason."""

Points = list[dict[str, Any]]


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS points of a curve, evenly spaced along it and keeping both ends: a curve over a large
    held-out split would otherwise have a point per row (megabytes of plot data in git for no visible gain)."""
    if len(x) <= MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, MAX_POINTS).round().astype(int))
    return x[keep], y[keep]


def _points(**columns: np.ndarray) -> Points:
    rounded = {name: _round(values) for name, values in columns.items()}
    return [dict(zip(rounded, row, strict=True)) for row in zip(*rounded.values(), strict=True)]


def _confusion(actual: np.ndarray, predicted: np.ndarray, classes: list[str]) -> Points:
    matrix = confusion_matrix(actual, predicted, labels=classes)
    return [
        {"actual": a, "predicted": p, "count": int(matrix[i, j])}
        for i, a in enumerate(classes)
        for j, p in enumerate(classes)
    ]


def binary_curves(
    actual: np.ndarray, probabilities: np.ndarray, classes: list[str], positive: str
) -> dict[str, Points]:
    score = probabilities[:, classes.index(positive)]
    is_positive = actual == positive
    predicted = np.asarray(classes)[np.argmax(probabilities, axis=1)]
    fpr, tpr = _thin(*roc_curve(is_positive, score)[:2])
    precision, recall = _thin(*precision_recall_curve(is_positive, score)[:2])
    bins = min(10, max(2, len(actual) // 10))
    fraction, mean_predicted = calibration_curve(is_positive, score, n_bins=bins, strategy="quantile")
    return {
        "roc": _points(fpr=fpr, tpr=tpr),
        "precision_recall": _points(recall=recall, precision=precision),
        "confusion": _confusion(actual, predicted, classes),
        "calibration": _points(mean_predicted=mean_predicted, fraction_positive=fraction),
    }


def multiclass_curves(actual: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict[str, Points]:
    """The confusion matrix and one ROC curve per class against the rest (a class absent here gets none)."""
    predicted = np.asarray(classes)[np.argmax(probabilities, axis=1)]
    roc: Points = []
    for i, label in enumerate(classes):
        is_label = actual == label
        if 0 < is_label.sum() < len(actual):
            fpr, tpr = _thin(*roc_curve(is_label, probabilities[:, i])[:2])
            roc += [{"class": label, **point} for point in _points(fpr=fpr, tpr=tpr)]
    return {"confusion": _confusion(actual, predicted, classes), "roc_ovr": roc}


def regression_curves(actual: np.ndarray, predicted: np.ndarray) -> dict[str, Points]:
    """Predicted against actual and residuals against predicted, at most MAX_POINTS rows spread over the range."""
    order = np.argsort(actual, kind="stable")
    keep = order[np.unique(np.linspace(0, len(order) - 1, min(len(order), MAX_POINTS)).round().astype(int))]
    a, p = actual[keep], predicted[keep]
    return {
        "predicted_vs_actual": _points(actual=a, predicted=p),
        "residuals": _points(predicted=p, residual=a - p),
    }
