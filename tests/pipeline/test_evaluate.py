from __future__ import annotations

import pandas as pd
import pytest

from mltemplate import plots
from mltemplate.model import TrainedModel
from mltemplate.params import ModelParams
from mltemplate.pipeline.evaluate import evaluate
from mltemplate.pipeline.render import render
from mltemplate.pipeline.train import train
from mltemplate.predict import labels, predict_proba, to_frame
from mltemplate.schema import Schema
from tests.conftest import trained_model

SCHEMA = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")


@pytest.fixture
def trained(mixed_frame: pd.DataFrame) -> TrainedModel:
    features = to_frame(mixed_frame, SCHEMA)
    pipeline = train(features, mixed_frame["outcome"], SCHEMA, ModelParams(estimator="logistic_regression"), seed=0)
    return trained_model(pipeline, SCHEMA)


def test_metrics_are_about_the_positive_class(trained: TrainedModel, mixed_frame: pd.DataFrame) -> None:
    result = evaluate(trained, mixed_frame, mixed_frame["outcome"])
    m = result.metrics
    assert set(m) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "support"}
    assert m["support"] == {
        "sick": int((mixed_frame["outcome"] == "sick").sum()),
        "well": int((mixed_frame["outcome"] == "well").sum()),
    }
    predicted = labels(trained, predict_proba(trained, mixed_frame))
    true_positive = sum(p == a == "sick" for p, a in zip(predicted, mixed_frame["outcome"], strict=True))
    assert m["recall"] == round(true_positive / m["support"]["sick"], 6)


def test_recall_follows_the_configured_positive_class(trained: TrainedModel, mixed_frame: pd.DataFrame) -> None:
    flipped = trained_model(trained.pipeline, Schema(SCHEMA.numeric, SCHEMA.categorical, "outcome", "well"))
    sick = evaluate(trained, mixed_frame, mixed_frame["outcome"]).metrics
    well = evaluate(flipped, mixed_frame, mixed_frame["outcome"]).metrics
    predicted = labels(trained, predict_proba(trained, mixed_frame))
    actual = list(mixed_frame["outcome"])
    well_hits = sum(p == a == "well" for p, a in zip(predicted, actual, strict=True))
    assert sick["accuracy"] == well["accuracy"]
    assert well["recall"] == round(well_hits / actual.count("well"), 6)


def test_curves_span_zero_to_one(trained: TrainedModel, mixed_frame: pd.DataFrame) -> None:
    curves = evaluate(trained, mixed_frame, mixed_frame["outcome"]).curves
    assert curves["roc"][0] == {"fpr": 0.0, "tpr": 0.0}
    assert curves["roc"][-1] == {"fpr": 1.0, "tpr": 1.0}
    assert all(0 <= p["fraction_positive"] <= 1 for p in curves["calibration"])


def test_confusion_is_counts_for_every_pair_of_classes(trained: TrainedModel, mixed_frame: pd.DataFrame) -> None:
    confusion = evaluate(trained, mixed_frame, mixed_frame["outcome"]).curves["confusion"]
    assert [(c["actual"], c["predicted"]) for c in confusion] == [
        (a, p) for a in trained.classes for p in trained.classes
    ]
    assert sum(c["count"] for c in confusion) == len(mixed_frame)
    predicted = labels(trained, predict_proba(trained, mixed_frame))
    hits = sum(p == a for p, a in zip(predicted, mixed_frame["outcome"], strict=True))
    assert sum(c["count"] for c in confusion if c["actual"] == c["predicted"]) == hits


def test_render_is_byte_stable_png(trained: TrainedModel, mixed_frame: pd.DataFrame) -> None:
    result = evaluate(trained, mixed_frame, mixed_frame["outcome"])
    first = render(result.curves, result.metrics, trained.classes, title="t")
    second = render(result.curves, result.metrics, trained.classes, title="t")
    assert set(first) == {plot.name for plot in plots.for_task("binary")}
    assert all(png.startswith(b"\x89PNG") for png in first.values())
    assert first == second
    assert b"matplotlib version" not in first["roc"]
