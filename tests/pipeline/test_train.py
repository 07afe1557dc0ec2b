from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mltemplate.params import ModelParams, load_params
from mltemplate.pipeline.train import describe, train, train_metrics
from mltemplate.predict import to_frame
from mltemplate.schema import Schema

SCHEMA = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "hist_gradient_boosting"])
def test_train_is_deterministic_for_fixed_seed(mixed_frame: pd.DataFrame, estimator: str) -> None:
    features = to_frame(mixed_frame, SCHEMA)
    p = ModelParams(estimator=estimator)
    first = train(features, mixed_frame["outcome"], SCHEMA, p, seed=1).predict_proba(features)
    second = train(features, mixed_frame["outcome"], SCHEMA, p, seed=1).predict_proba(features)
    np.testing.assert_array_equal(first, second)


def test_train_uses_the_chosen_hyperparameters(mixed_frame: pd.DataFrame) -> None:
    p = ModelParams(estimator="random_forest", hyperparameters={"random_forest": {"n_estimators": 7}})
    pipeline = train(to_frame(mixed_frame, SCHEMA), mixed_frame["outcome"], SCHEMA, p, seed=0)
    assert len(pipeline.named_steps["estimator"].estimators_) == 7


def test_train_metrics_are_probabilities_and_losses(mixed_frame: pd.DataFrame) -> None:
    features = to_frame(mixed_frame, SCHEMA)
    pipeline = train(features, mixed_frame["outcome"], SCHEMA, ModelParams(estimator="logistic_regression"), seed=0)
    metrics = train_metrics(pipeline, features, mixed_frame["outcome"])
    assert 0.5 < metrics["train_accuracy"] <= 1.0
    assert metrics["train_log_loss"] > 0


@pytest.mark.project  # this project's params.yaml
def test_describe_holds_no_run_specific_values(mixed_frame: pd.DataFrame) -> None:
    params = load_params(ROOT / "params.yaml")
    features = to_frame(mixed_frame, SCHEMA)
    described = describe(params, features, SCHEMA, data_md5="abc")
    assert described["data"] == {"path": params.data.raw.as_posix(), "md5": "abc", "train_rows": len(mixed_frame)}
    assert described == describe(params, features, SCHEMA, data_md5="abc")
    assert not {"git_commit", "run_id", "trained_at"} & set(described)


@pytest.mark.project  # this project's params.yaml
def test_describe_names_features_seen_missing_and_known_categories(mixed_frame: pd.DataFrame) -> None:
    features = to_frame(mixed_frame, SCHEMA)
    described = describe(load_params(ROOT / "params.yaml"), features, SCHEMA, data_md5="abc")
    assert described["nullable"] == ["dose", "site"]  # the fixture's missing values; age is complete
    assert described["categories"] == {"site": ["east", "north", "south"]}
