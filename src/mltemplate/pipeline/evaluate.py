"""Stage `evaluate`: score models/model.skops on data/prepared/test.csv with the task's metrics (per group of each
`evaluate.slices` column too) and permutation importance; write metrics.json and the task's plots (points and PNGs)
under plots/. MLflow gets them from `python -m mltemplate.registry` (`make run`), once."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from mltemplate import atomic, metrics, plots
from mltemplate.model import TrainedModel, load
from mltemplate.params import load_params
from mltemplate.paths import METRICS_FILE, TEST_CSV
from mltemplate.pipeline.curves import Points, binary_curves, multiclass_curves, regression_curves
from mltemplate.pipeline.render import render
from mltemplate.predict import predict, to_frame
from mltemplate.schema import DataError

IMPORTANCE_REPEATS = 5
"""Shuffles per feature in permutation importance: the mean is plotted, the spread kept as `std`."""
MISSING_GROUP = "(missing)"
"""The group of rows whose slice column is empty."""


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    curves: dict[str, Points]


def importance(model: TrainedModel, features: pd.DataFrame, target: pd.Series, *, seed: int) -> Points:
    """Permutation importance of each input column on the held-out rows: how much the task's score
    (metrics.IMPORTANCE_SCORING) drops when that column is shuffled, mean and spread over IMPORTANCE_REPEATS
    seeded shuffles; sorted, most important first."""
    task = model.schema.task
    frame = to_frame(features, model.schema)
    found = permutation_importance(
        model.pipeline,
        frame,
        target.to_numpy(),
        scoring=metrics.IMPORTANCE_SCORING[task],
        n_repeats=IMPORTANCE_REPEATS,
        random_state=seed,
        n_jobs=1,
    )
    rows = [
        {"feature": name, "importance": round(float(mean), metrics.DIGITS), "std": round(float(std), metrics.DIGITS)}
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
            value: metrics.scores(
                schema.task, actual[values == value], output[values == value], model.classes, schema.positive_class
            )
            for value in sorted(set(values))
        }
        by_column[column] = per_group
        gaps[column] = {
            name: round(max(found) - min(found), metrics.DIGITS)
            for name in metrics.names(schema.task)
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
    held_out: dict[str, Any] = metrics.scores(schema.task, actual, output, classes, schema.positive_class)
    if schema.classification:
        held_out[metrics.SUPPORT] = {label: int((actual == label).sum()) for label in classes}
    if schema.task == "binary":
        curves = binary_curves(actual, output, classes, str(schema.positive_class))
    elif schema.task == "multiclass":
        curves = multiclass_curves(actual, output, classes)
    else:
        curves = regression_curves(actual, output)
    curves["importance"] = importance(model, features, labels, seed=seed)
    if groups is not None and not groups.empty and len(groups.columns):
        held_out[metrics.SLICES], held_out[metrics.SLICE_GAP] = slice_metrics(model, groups, actual, output)
    return Evaluation(metrics=held_out, curves=curves)


def read_groups(slices: Sequence[str], path: Path = TEST_CSV) -> pd.DataFrame | None:
    """The slice columns of the held-out split as the CSV spells them (text: `30-39`, `1`), or None without slices."""
    if not slices:
        return None
    header = list(pd.read_csv(path, nrows=0).columns)
    missing = [column for column in slices if column not in header]
    if missing:
        raise DataError(
            f"evaluate.slices names {missing[0]!r}, which the data does not have (its held-out rows, {path}, hold "
            "every column of the CSV)"
        )
    return pd.read_csv(path, dtype=str, usecols=list(slices))[list(slices)]


def main() -> None:
    params = load_params()
    trained = load()
    features, labels = trained.schema.read(TEST_CSV)
    evaluation = evaluate(trained, features, labels, seed=params.seed, groups=read_groups(params.evaluate.slices))
    task = trained.schema.task
    images = render(evaluation.curves, evaluation.metrics, trained.classes, title=params.name, task=task)
    written = plots.for_task(task)
    for plot in plots.PLOTS:
        if plot not in written:
            # A plot of another task (the params switched task) would otherwise linger in plots/ and in the report.
            plot.data.unlink(missing_ok=True)
            plot.image.unlink(missing_ok=True)
    for plot in written:
        atomic.write_text(plot.data, plots.write_points(plot, evaluation.curves[plot.name]))
        atomic.write_bytes(plot.image, images[plot.name])
    atomic.write_text(METRICS_FILE, json.dumps(evaluation.metrics, indent=2) + "\n")
    summary = ", ".join(f"{k} {v:.4f}" for k, v in evaluation.metrics.items() if isinstance(v, float))
    print(f"evaluate: {len(features)} held-out rows: {summary}")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
