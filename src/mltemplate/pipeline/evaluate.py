"""Stage `evaluate`: score models/model.skops on data/prepared/test.csv; write metrics.json, plot data
and PNGs under plots/, and add them to the model's MLflow run."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from mltemplate import atomic
from mltemplate import model as model_files
from mltemplate.params import load_params
from mltemplate.paths import METRICS_FILE, PLOT_DATA, PLOT_IMAGES, TEST_CSV
from mltemplate.registry import runs

DIGITS = 6
"""Metrics and curves are rounded so that last-bit float noise across machines does not show as a change."""
MAX_POINTS = 500
"""Most points a curve keeps (see _thin); the confusion matrix is stored as counts for the same reason."""


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    curves: dict[str, list[dict[str, Any]]]


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS points of a curve, evenly spaced along it and keeping both ends: a curve over a large
    held-out split would otherwise have a point per row (megabytes of plot data in git for no visible gain)."""
    if len(x) <= MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, MAX_POINTS).round().astype(int))
    return x[keep], y[keep]


def evaluate(model: model_files.TrainedModel, features: pd.DataFrame, labels: pd.Series) -> Evaluation:
    """Held-out metrics for the positive class, and the points of each curve."""
    positive = model.schema.positive_class
    classes = model.classes
    probabilities = model_files.predict_proba(model, features)
    predicted = np.asarray(model_files.labels(model, probabilities))
    actual = labels.astype(str).to_numpy()
    score = probabilities[:, classes.index(positive)]
    is_positive = actual == positive
    metrics: dict[str, Any] = {
        "accuracy": accuracy_score(actual, predicted),
        "precision": precision_score(actual, predicted, pos_label=positive, zero_division=0),
        "recall": recall_score(actual, predicted, pos_label=positive, zero_division=0),
        "f1": f1_score(actual, predicted, pos_label=positive, zero_division=0),
        "roc_auc": roc_auc_score(is_positive, score),
        "log_loss": log_loss(actual, probabilities, labels=classes),
    }
    metrics = {key: round(float(value), DIGITS) for key, value in metrics.items()}
    metrics["support"] = {label: int((actual == label).sum()) for label in classes}

    fpr, tpr = _thin(*roc_curve(is_positive, score)[:2])
    precision, recall = _thin(*precision_recall_curve(is_positive, score)[:2])
    matrix = confusion_matrix(actual, predicted, labels=classes)
    bins = min(10, max(2, len(actual) // 10))
    fraction, mean_predicted = calibration_curve(is_positive, score, n_bins=bins, strategy="quantile")
    curves: dict[str, list[dict[str, Any]]] = {
        "roc": [{"fpr": x, "tpr": y} for x, y in zip(_round(fpr), _round(tpr), strict=True)],
        "precision_recall": [
            {"recall": x, "precision": y} for x, y in zip(_round(recall), _round(precision), strict=True)
        ],
        "confusion": [
            {"actual": a, "predicted": p, "count": int(matrix[i, j])}
            for i, a in enumerate(classes)
            for j, p in enumerate(classes)
        ],
        "calibration": [
            {"mean_predicted": x, "fraction_positive": y}
            for x, y in zip(_round(mean_predicted), _round(fraction), strict=True)
        ],
    }
    return Evaluation(metrics=metrics, curves=curves)


def render(evaluation: Evaluation, classes: list[str], *, title: str) -> dict[str, bytes]:
    """One PNG per curve; fixed size and no version stamp, so unchanged data gives unchanged bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images: dict[str, bytes] = {}
    curves = evaluation.curves
    m = evaluation.metrics
    specs = {
        "roc": ("False positive rate", "True positive rate", "fpr", "tpr", f"ROC (AUC {m['roc_auc']:.3f})"),
        "precision_recall": ("Recall", "Precision", "recall", "precision", "Precision-recall"),
        "calibration": (
            "Mean predicted probability",
            "Fraction positive",
            "mean_predicted",
            "fraction_positive",
            "Calibration",
        ),
    }
    for name, (xlabel, ylabel, x, y, heading) in specs.items():
        fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
        ax.plot([p[x] for p in curves[name]], [p[y] for p in curves[name]], lw=2)
        if name in {"roc", "calibration"}:
            ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{title}: {heading}", xlim=(0, 1), ylim=(0, 1.02))
        images[name] = _png(fig)
    counts = {(p["actual"], p["predicted"]): p["count"] for p in curves["confusion"]}
    matrix = np.array([[counts.get((a, p), 0) for p in classes] for a in classes])
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    ax.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xticklabels=classes,
        yticklabels=classes,
        xlabel="Predicted",
        ylabel="Actual",
        title=f"{title}: confusion matrix",
    )
    images["confusion"] = _png(fig)
    return images


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return bytes(buffer.getvalue())


def main() -> None:
    params = load_params()
    trained = model_files.load()
    features, labels = trained.schema.read(TEST_CSV)
    evaluation = evaluate(trained, features, labels)
    images = render(evaluation, trained.classes, title=params.name)
    for name, path in PLOT_DATA.items():
        atomic.write_text(path, json.dumps({name: evaluation.curves[name]}, indent=1) + "\n")
    for name, path in PLOT_IMAGES.items():
        atomic.write_bytes(path, images[name])
    atomic.write_text(METRICS_FILE, json.dumps(evaluation.metrics, indent=2) + "\n")

    artifacts = [METRICS_FILE, *PLOT_IMAGES.values()]
    tracked = runs.log_evaluation(params.name, trained.metadata.model_md5, evaluation.metrics, artifacts)
    print(f"evaluate: {tracked}")
    summary = ", ".join(f"{k} {v:.4f}" for k, v in evaluation.metrics.items() if isinstance(v, float))
    print(f"evaluate: {len(features)} held-out rows: {summary}")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
