"""Stage `evaluate`: score models/model.skops on data/prepared/test.csv with the task's metrics (per group of each
`evaluate.slices` column too); write metrics.json, the task's plot data and PNGs under plots/ (permutation importance
among them), and add them to the model's MLflow run."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
    root_mean_squared_error,
)

from mltemplate import atomic, tasks
from mltemplate.model import TrainedModel, load
from mltemplate.params import load_params
from mltemplate.paths import METRICS_FILE, PLOT_DATA, PLOT_IMAGES, TEST_CSV
from mltemplate.predict import predict, to_frame
from mltemplate.registry import runs
from mltemplate.schema import DataError

DIGITS = 6
"""Metrics and curves are rounded so that last-bit float noise across machines does not show as a change."""
MAX_POINTS = 500
"""Most points a curve keeps (see _thin); the confusion matrix is stored as counts for the same reason."""
IMPORTANCE_REPEATS = 5
"""Shuffles per feature in permutation importance: the mean is plotted, the spread kept as `std`."""
MISSING_GROUP = "(missing)"
"""The group of rows whose slice column is empty."""

Points = list[dict[str, Any]]


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    curves: dict[str, Points]


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS points of a curve, evenly spaced along it and keeping both ends: a curve over a large
    held-out split would otherwise have a point per row (megabytes of plot data in git for no visible gain)."""
    if len(x) <= MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, MAX_POINTS).round().astype(int))
    return x[keep], y[keep]


def scores(
    task: tasks.Task, actual: np.ndarray, output: np.ndarray, classes: Sequence[str], positive: str | None = None
) -> dict[str, float]:
    """The task's metrics (tasks.METRICS) of `output` (class probabilities, or predicted numbers) against `actual`,
    rounded. A metric that is not defined on these rows (roc_auc over one class, mape with a zero target, r2 of one
    row) is left out rather than guessed."""
    values: dict[str, Any] = {}
    if task == "regression":
        values["rmse"] = root_mean_squared_error(actual, output)
        values["mae"] = mean_absolute_error(actual, output)
        if len(actual) > 1:
            values["r2"] = r2_score(actual, output)
        if not np.any(actual == 0):
            values["mape"] = mean_absolute_percentage_error(actual, output)
    else:
        labels = list(classes)
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


def importance(model: TrainedModel, features: pd.DataFrame, target: pd.Series, *, seed: int) -> Points:
    """Permutation importance of each input column on the held-out rows: how much the task's score
    (tasks.IMPORTANCE_SCORING) drops when that column is shuffled, mean and spread over IMPORTANCE_REPEATS
    seeded shuffles; sorted, most important first."""
    task = model.schema.task
    frame = to_frame(features, model.schema)
    found = permutation_importance(
        model.pipeline,
        frame,
        target.to_numpy(),
        scoring=tasks.IMPORTANCE_SCORING[task],
        n_repeats=IMPORTANCE_REPEATS,
        random_state=seed,
        n_jobs=1,
    )
    rows = [
        {"feature": name, "importance": round(float(mean), DIGITS), "std": round(float(std), DIGITS)}
        for name, mean, std in zip(frame.columns, found.importances_mean, found.importances_std, strict=True)
    ]
    return sorted(rows, key=lambda row: (-row["importance"], row["feature"]))


def slice_metrics(
    model: TrainedModel, groups: pd.DataFrame, actual: np.ndarray, output: np.ndarray
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per slice column, the task's metrics for each of its values, and the largest gap between those values'
    metrics (max - min, over the groups where a metric is defined)."""
    schema = model.schema
    by_column: dict[str, Any] = {}
    gaps: dict[str, Any] = {}
    for column in groups.columns:
        values = groups[column].astype(object).where(groups[column].notna(), MISSING_GROUP).astype(str).to_numpy()
        per_group = {
            value: scores(
                schema.task, actual[values == value], output[values == value], model.classes, schema.positive_class
            )
            for value in sorted(set(values))
        }
        by_column[column] = per_group
        gaps[column] = {
            name: round(max(found) - min(found), DIGITS)
            for name in tasks.names(schema.task)
            if (found := [group[name] for group in per_group.values() if name in group])
        }
    return by_column, gaps


def evaluate(
    model: TrainedModel,
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    seed: int = 0,
    groups: pd.DataFrame | None = None,
) -> Evaluation:
    """Held-out metrics of the model's task, the points of each of its plots, permutation importance, and, when
    `groups` holds slice columns, the metrics per group of each."""
    schema = model.schema
    classes = model.classes
    output = predict(model, features)
    actual = labels.astype(str if schema.classification else "float64").to_numpy()
    metrics: dict[str, Any] = scores(schema.task, actual, output, classes, schema.positive_class)
    if schema.classification:
        metrics["support"] = {label: int((actual == label).sum()) for label in classes}
    if schema.task == "binary":
        curves = binary_curves(actual, output, classes, str(schema.positive_class))
    elif schema.task == "multiclass":
        curves = multiclass_curves(actual, output, classes)
    else:
        curves = regression_curves(actual, output)
    curves["importance"] = importance(model, features, labels, seed=seed)
    if groups is not None and not groups.empty and len(groups.columns):
        metrics["slices"], metrics[tasks.SLICE_GAP] = slice_metrics(model, groups, actual, output)
    return Evaluation(metrics=metrics, curves=curves)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _binary_images(evaluation: Evaluation, *, title: str) -> dict[str, bytes]:
    plt = _pyplot()
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


def render(evaluation: Evaluation, classes: list[str], *, title: str, task: tasks.Task = "binary") -> dict[str, bytes]:
    """One PNG per plot of the task (tasks.PLOTS); fixed size and no version stamp, so unchanged data gives
    unchanged bytes."""
    curves = evaluation.curves
    images: dict[str, bytes] = {}
    if task == "binary":
        images.update(_binary_images(evaluation, title=title))
    if tasks.is_classification(task):
        images["confusion"] = _confusion_image(curves["confusion"], classes, title=title)
    if task == "multiclass":
        images["roc_ovr"] = _roc_ovr_image(curves["roc_ovr"], classes, title=title)
    if task == "regression":
        images.update(_regression_images(curves, title=title))
    scoring = tasks.IMPORTANCE_SCORING[task].removeprefix("neg_").replace("root_mean_squared_error", "RMSE (rise)")
    images["importance"] = _importance_image(curves["importance"], title=title, scoring=scoring)
    return images


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return bytes(buffer.getvalue())


def read_groups(slices: Sequence[str], path: Path = TEST_CSV) -> pd.DataFrame | None:
    """The slice columns of the held-out split as the CSV spells them (text: `30-39`, `1`), or None without slices."""
    if not slices:
        return None
    header = list(pd.read_csv(path, nrows=0).columns)
    missing = [column for column in slices if column not in header]
    if missing:
        raise DataError(
            f"evaluate.slices names {missing[0]!r}, which {path} does not hold: run `dvc repro` (prepare keeps it)"
        )
    return pd.read_csv(path, dtype=str, usecols=list(slices))[list(slices)]


def main() -> None:
    params = load_params()
    trained = load()
    features, labels = trained.schema.read(TEST_CSV)
    evaluation = evaluate(trained, features, labels, seed=params.seed, groups=read_groups(params.evaluate.slices))
    task = trained.schema.task
    images = render(evaluation, trained.classes, title=params.name, task=task)
    written = tasks.PLOTS[task]
    for name in PLOT_DATA:
        # A plot of another task (the params switched task) would otherwise linger in plots/ and in the report.
        for path in (PLOT_DATA[name], PLOT_IMAGES[name]):
            if name not in written:
                path.unlink(missing_ok=True)
    for name in written:
        atomic.write_text(PLOT_DATA[name], json.dumps({name: evaluation.curves[name]}, indent=1) + "\n")
        atomic.write_bytes(PLOT_IMAGES[name], images[name])
    atomic.write_text(METRICS_FILE, json.dumps(evaluation.metrics, indent=2) + "\n")

    artifacts = [METRICS_FILE, *(PLOT_IMAGES[name] for name in written)]
    tracked = runs.log_evaluation(params.name, trained.metadata.model_md5, evaluation.metrics, artifacts)
    print(f"evaluate: {tracked}")
    summary = ", ".join(f"{k} {v:.4f}" for k, v in evaluation.metrics.items() if isinstance(v, float))
    print(f"evaluate: {len(features)} held-out rows: {summary}")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
