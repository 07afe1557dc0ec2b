"""The evaluate stage's PNGs, one per plot of the task (mltemplate.plots), for MLflow, the PR report and the model
card: fixed size and no version stamp, so unchanged points give unchanged bytes."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from mltemplate import metrics, plots
from mltemplate.pipeline.curves import Points


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _binary_images(curves: dict[str, Points], held_out: dict[str, Any], *, title: str) -> dict[str, bytes]:
    plt = _pyplot()
    images: dict[str, bytes] = {}
    m = held_out
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
    return images


def _confusion_image(points: Points, classes: list[str], *, title: str) -> bytes:
    plt = _pyplot()
    counts = {(p["actual"], p["predicted"]): p["count"] for p in points}
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
    return _png(fig)


def _roc_ovr_image(points: Points, classes: list[str], *, title: str) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    for label in classes:
        curve = [p for p in points if p["class"] == label]
        if curve:
            ax.plot([p["fpr"] for p in curve], [p["tpr"] for p in curve], lw=2, label=label)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.legend(loc="lower right", fontsize="small")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=f"{title}: ROC, one vs rest")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    return _png(fig)


def _regression_images(curves: dict[str, Points], *, title: str) -> dict[str, bytes]:
    plt = _pyplot()
    pairs = curves["predicted_vs_actual"]
    actual, predicted = [p["actual"] for p in pairs], [p["predicted"] for p in pairs]
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    ax.scatter(actual, predicted, s=8, alpha=0.6)
    low, high = min(actual + predicted), max(actual + predicted)
    ax.plot([low, high], [low, high], ls="--", c="grey", lw=1)
    ax.set(xlabel="Actual", ylabel="Predicted", title=f"{title}: predicted vs actual")
    images = {"predicted_vs_actual": _png(fig)}
    residuals = curves["residuals"]
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    ax.scatter([p["predicted"] for p in residuals], [p["residual"] for p in residuals], s=8, alpha=0.6)
    ax.axhline(0, ls="--", c="grey", lw=1)
    ax.set(xlabel="Predicted", ylabel="Actual - predicted", title=f"{title}: residuals")
    images["residuals"] = _png(fig)
    return images


def _importance_image(points: Points, *, title: str, scoring: str, top: int = 20) -> bytes:
    plt = _pyplot()
    shown = points[:top][::-1]  # most important at the top
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(shown) + 1)), dpi=100)
    ax.barh([p["feature"] for p in shown], [p["importance"] for p in shown], xerr=[p["std"] for p in shown])
    ax.set(xlabel=f"Drop in {scoring} when shuffled", title=f"{title}: permutation importance")
    return _png(fig)


def render(
    curves: dict[str, Points],
    held_out: dict[str, Any],
    classes: list[str],
    *,
    title: str,
    task: metrics.Task = "binary",
) -> dict[str, bytes]:
    """One PNG per plot of the task (mltemplate.plots), keyed by plot name, from its points (and, for the ROC
    title, the held-out metrics)."""
    images: dict[str, bytes] = {}
    if task == "binary":
        images.update(_binary_images(curves, held_out, title=title))
    if metrics.is_classification(task):
        images["confusion"] = _confusion_image(curves["confusion"], classes, title=title)
    if task == "multiclass":
        images["roc_ovr"] = _roc_ovr_image(curves["roc_ovr"], classes, title=title)
    if task == "regression":
        images.update(_regression_images(curves, title=title))
    scoring = metrics.IMPORTANCE_SCORING[task].removeprefix("neg_").replace("root_mean_squared_error", "RMSE (rise)")
    images["importance"] = _importance_image(curves["importance"], title=title, scoring=scoring)
    for plot in plots.for_task(task):
        if plot.name not in images:  # a plot added to the table only (docs/customise.md): its x against its y
            images[plot.name] = _table_image(plot, curves[plot.name], title=title)
    return images


def _table_image(plot: plots.Plot, points: Points, *, title: str) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    x, y = [p[plot.x] for p in points], [p[plot.y] for p in points]
    if plot.template == "scatter":
        ax.scatter(x, y, s=8)
    else:
        ax.plot(x, y, lw=2)
    ax.set(xlabel=plot.x, ylabel=plot.y, title=f"{title}: {plot.title}")
    return _png(fig)


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return bytes(buffer.getvalue())
