"""features.py: derived columns computed inside the saved Pipeline, from the raw columns, loaded safely."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin

from mltemplate import features
from mltemplate.canonical import dumps
from mltemplate.model import TRUSTED, ModelError, load, loads
from mltemplate.params import ModelParams
from mltemplate.pipeline.train import train
from mltemplate.predict import predict_proba, to_frame
from mltemplate.schema import Schema
from tests.conftest import save_model, trained_model
from tests.service_client import json_records

SCHEMA = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")


def _missing_inputs(self: features.DerivedColumns, X: pd.DataFrame) -> pd.DataFrame:
    return X.assign(missing_inputs=X.isna().sum(axis=1).astype("float64"))


@pytest.fixture
def with_a_derived_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """features.py as docs/customise.md's example makes it: one numeric column derived from the raw ones."""
    monkeypatch.setattr(features.DerivedColumns, "numeric", ("missing_inputs",))
    monkeypatch.setattr(features.DerivedColumns, "categorical", ())
    monkeypatch.setattr(features.DerivedColumns, "transform", _missing_inputs)


def test_without_derived_columns_train_adds_no_step(monkeypatch: pytest.MonkeyPatch, mixed_frame: pd.DataFrame) -> None:
    monkeypatch.setattr(features.DerivedColumns, "numeric", ())
    monkeypatch.setattr(features.DerivedColumns, "categorical", ())
    pipeline = train(
        to_frame(mixed_frame, SCHEMA),
        mixed_frame["outcome"],
        SCHEMA,
        ModelParams(estimator="logistic_regression"),
        seed=0,
    )
    assert [name for name, _ in pipeline.steps] == ["preprocess", "estimator"]


@pytest.mark.usefixtures("with_a_derived_column")
def test_derived_columns_are_computed_inside_the_saved_model_from_the_raw_columns(
    tmp_path: Path, mixed_frame: pd.DataFrame
) -> None:
    raw = to_frame(mixed_frame, SCHEMA)
    p = ModelParams(estimator="logistic_regression")
    pipeline = train(raw, mixed_frame["outcome"], SCHEMA, p, seed=0)
    assert [name for name, _ in pipeline.steps] == ["features", "preprocess", "estimator"]
    assert "missing_inputs" in pipeline.named_steps["preprocess"].get_feature_names_out()
    paths = {"model_path": tmp_path / "model.skops", "metadata_path": tmp_path / "metadata.json"}
    save_model(trained_model(pipeline, SCHEMA), **paths)
    loaded = load(**paths)  # the safe loader: only TRUSTED types
    assert loaded.schema.features == SCHEMA.features  # what the service asks for: the raw columns
    records = json_records(mixed_frame[list(SCHEMA.features)].head(5))
    np.testing.assert_array_equal(predict_proba(loaded, records), pipeline.predict_proba(raw.head(5)))


@pytest.mark.usefixtures("with_a_derived_column")
def test_a_model_with_derived_columns_holds_only_trusted_types(mixed_frame: pd.DataFrame) -> None:
    pipeline = train(
        to_frame(mixed_frame, SCHEMA),
        mixed_frame["outcome"],
        SCHEMA,
        ModelParams(estimator="logistic_regression"),
        seed=0,
    )
    held = set(sio.get_untrusted_types(data=dumps(pipeline)))
    assert held <= TRUSTED, f"add {sorted(held - TRUSTED)} to features.TRUSTED_TYPES"
    assert held >= features.TRUSTED_TYPES


class Impostor(TransformerMixin, BaseEstimator):
    """A transformer that is not the project's: loading must not import it."""

    def fit(self, X: pd.DataFrame, y: object = None) -> Impostor:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X


def test_a_model_with_a_transformer_that_is_not_the_projects_is_refused(mixed_frame: pd.DataFrame) -> None:
    pipeline = train(
        to_frame(mixed_frame, SCHEMA),
        mixed_frame["outcome"],
        SCHEMA,
        ModelParams(estimator="logistic_regression"),
        seed=0,
    )
    pipeline.steps.insert(0, ("features", Impostor().fit(mixed_frame)))
    with pytest.raises(ModelError, match=r"untrusted types \['tests\.test_features\.Impostor'\]"):
        loads(dumps(pipeline))
