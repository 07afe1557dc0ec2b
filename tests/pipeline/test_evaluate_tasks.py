"""evaluate.py for the multiclass and regression tasks, permutation importance and per-group (slice) metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mltemplate import plots
from mltemplate.metrics import SLICE_GAP, names, scores
from mltemplate.model import TrainedModel
from mltemplate.params import ModelParams
from mltemplate.pipeline.curves import MAX_POINTS
from mltemplate.pipeline.evaluate import evaluate, read_groups
from mltemplate.pipeline.render import render
from mltemplate.pipeline.train import train
from mltemplate.predict import predict, to_frame
from mltemplate.schema import DataError, Schema
from tests.conftest import trained_model

pytestmark = pytest.mark.template  # every task's metrics and plots


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    noise = rng.normal(0, 1, n)
    group = rng.choice(["a", "b"], n)
    return pd.DataFrame({"x": x, "noise": noise, "group": group})


def fit(frame: pd.DataFrame, target: pd.Series, schema: Schema, estimator: str) -> TrainedModel:
    features = to_frame(frame, schema)
    return trained_model(train(features, target, schema, ModelParams(estimator=estimator), seed=0), schema)


@pytest.fixture
def multiclass() -> tuple[TrainedModel, pd.DataFrame, pd.Series]:
    frame = _frame(150)
    labels = pd.Series(np.select([frame["x"] < -0.5, frame["x"] < 0.5], ["low", "mid"], "high"))
    schema = Schema(("x", "noise"), ("group",), "tier", None, task="multiclass")
    return fit(frame, labels, schema, "logistic_regression"), frame, labels


@pytest.fixture
def regression() -> tuple[TrainedModel, pd.DataFrame, pd.Series]:
    frame = _frame(120)
    rng = np.random.default_rng(1)
    target = pd.Series(10 + 3 * frame["x"] + rng.normal(0, 0.5, len(frame)))
    schema = Schema(("x", "noise"), ("group",), "price", None, task="regression")
    return fit(frame, target, schema, "ridge"), frame, target


def test_multiclass_metrics_are_the_tasks_and_per_class_support(multiclass) -> None:  # type: ignore[no-untyped-def]
    trained, frame, labels = multiclass
    metrics = evaluate(trained, frame, labels).metrics
    assert [k for k in metrics if k != "support"] == names("multiclass")
    assert metrics["support"] == {label: int((labels == label).sum()) for label in trained.classes}


def test_multiclass_plots_are_confusion_and_one_roc_per_class(multiclass) -> None:  # type: ignore[no-untyped-def]
    trained, frame, labels = multiclass
    curves = evaluate(trained, frame, labels).curves
    assert set(curves) == {plot.name for plot in plots.for_task("multiclass")}
    assert {p["class"] for p in curves["roc_ovr"]} == set(trained.classes)
    assert sum(p["count"] for p in curves["confusion"]) == len(frame)


def test_regression_metrics_are_the_tasks(regression) -> None:  # type: ignore[no-untyped-def]
    trained, frame, target = regression
    metrics = evaluate(trained, frame, target).metrics
    assert set(metrics) == set(names("regression"))
    predicted = predict(trained, frame)
    assert metrics["rmse"] == round(float(np.sqrt(np.mean((target.to_numpy() - predicted) ** 2))), 6)


def test_mape_is_left_out_when_a_target_is_zero() -> None:
    actual, predicted = np.array([0.0, 2.0, 3.0]), np.array([0.5, 2.0, 2.0])
    assert "mape" not in scores("regression", actual, predicted, [])
    assert "mape" in scores("regression", actual + 1, predicted, [])


def test_regression_plots_pair_each_actual_with_its_prediction(regression) -> None:  # type: ignore[no-untyped-def]
    trained, frame, target = regression
    curves = evaluate(trained, frame, target).curves
    assert set(curves) == {plot.name for plot in plots.for_task("regression")}
    pairs, residuals = curves["predicted_vs_actual"], curves["residuals"]
    assert len(pairs) == len(residuals) == len(frame) <= MAX_POINTS
    assert all(
        r["residual"] == pytest.approx(p["actual"] - p["predicted"], abs=1e-5)
        for p, r in zip(pairs, residuals, strict=True)
    )


def test_regression_plots_of_a_large_split_are_thinned() -> None:
    frame = _frame(2 * MAX_POINTS + 7)
    schema = Schema(("x", "noise"), ("group",), "y", None, task="regression")
    trained = fit(frame, frame["x"] * 2, schema, "linear_regression")
    curves = evaluate(trained, frame, frame["x"] * 2).curves
    assert len(curves["predicted_vs_actual"]) == MAX_POINTS


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_importance_ranks_the_informative_column_first(task: str, request: pytest.FixtureRequest) -> None:
    trained, frame, target = request.getfixturevalue(task)
    rows = evaluate(trained, frame, target, seed=3).curves["importance"]
    assert next(row["feature"] for row in rows) == "x"
    assert {row["feature"] for row in rows} == set(trained.schema.features)


def test_importance_is_reproducible_with_the_seed(regression) -> None:  # type: ignore[no-untyped-def]
    trained, frame, target = regression
    first = evaluate(trained, frame, target, seed=3).curves["importance"]
    assert evaluate(trained, frame, target, seed=3).curves["importance"] == first


def test_slices_score_each_group_and_its_largest_gap(regression) -> None:  # type: ignore[no-untyped-def]
    trained, frame, target = regression
    metrics = evaluate(trained, frame, target, groups=frame[["group"]]).metrics
    by_group = metrics["slices"]["group"]
    assert set(by_group) == {"a", "b"}
    mask = (frame["group"] == "a").to_numpy()
    alone = scores("regression", target.to_numpy()[mask], predict(trained, frame)[mask], [])
    assert by_group["a"] == alone
    gap = metrics[SLICE_GAP]["group"]["rmse"]
    assert gap == round(abs(by_group["a"]["rmse"] - by_group["b"]["rmse"]), 6)


def test_a_missing_slice_value_is_its_own_group(multiclass) -> None:  # type: ignore[no-untyped-def]
    trained, frame, labels = multiclass
    groups = frame[["group"]].astype(object)
    groups.iloc[:5, 0] = np.nan
    slices = evaluate(trained, frame, labels, groups=groups).metrics["slices"]["group"]
    assert "(missing)" in slices


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_render_draws_every_plot_of_the_task(task: str, request: pytest.FixtureRequest) -> None:
    trained, frame, target = request.getfixturevalue(task)
    result = evaluate(trained, frame, target)
    images = render(result.curves, result.metrics, trained.classes, title="t", task=trained.schema.task)
    assert set(images) == {plot.name for plot in plots.for_task(trained.schema.task)}
    assert all(png.startswith(b"\x89PNG") for png in images.values())


def test_slice_groups_are_read_as_the_csv_spells_them(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("x,band,outcome\n1.0,30,a\n2.0,,b\n3.0,40,a\n")
    groups = read_groups(["band"], path)
    assert groups is not None
    assert groups["band"].tolist()[::2] == ["30", "40"]
    assert read_groups([], path) is None


def test_a_slice_column_missing_from_the_split_is_named(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("x,outcome\n1.0,a\n")
    with pytest.raises(DataError, match=r"evaluate.slices names 'band', which the data does not have"):
        read_groups(["band"], path)
