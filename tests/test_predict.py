"""mltemplate.predict: records in any accepted shape give the frame, and so the answers, that `evaluate` scores;
to_frame's fast paths (dicts or tuples for the service, one float64 block for numeric schemas) give the exact frame
of the general DataFrame path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltemplate import estimators
from mltemplate.model import TrainedModel
from mltemplate.params import ModelParams
from mltemplate.pipeline.train import train
from mltemplate.predict import labels, predict_proba, to_frame
from mltemplate.schema import Schema
from tests.conftest import trained_model

MIXED = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")


def fitted(frame: pd.DataFrame, estimator: str) -> TrainedModel:
    features = to_frame(frame, MIXED)
    pipeline = train(features, frame["outcome"], MIXED, ModelParams(estimator=estimator), seed=0)
    return trained_model(pipeline, MIXED)


def test_predict_accepts_records_in_any_key_order(mixed_frame: pd.DataFrame) -> None:
    trained = fitted(mixed_frame, "logistic_regression")
    records = [{"site": "north", "dose": 4.0, "age": 61.0}, {"age": 30.0, "site": None, "dose": None}]
    probabilities = predict_proba(trained, records)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert labels(trained, probabilities)[0] in {"sick", "well"}


NUMERIC = Schema(numeric=("age", "dose"), categorical=(), target="outcome", positive_class="sick")


def _trained(schema: Schema, frame: pd.DataFrame) -> TrainedModel:
    estimator = estimators.make_estimator("logistic_regression", {})
    pipeline = estimators.build_pipeline(numeric=schema.numeric, categorical=schema.categorical, estimator=estimator)
    pipeline.fit(frame[list(schema.features)], frame["outcome"])
    return trained_model(pipeline, schema)


@pytest.mark.parametrize("schema", [NUMERIC, MIXED], ids=["numeric", "mixed"])
def test_dicts_tuples_and_frames_give_the_same_frame_and_probabilities(
    schema: Schema, mixed_frame: pd.DataFrame
) -> None:
    trained = _trained(schema, mixed_frame)
    frame = mixed_frame[list(schema.features)]
    dicts = frame.to_dict("records")
    dicts[0] = {k: v for k, v in dicts[0].items() if k != "age"}  # a missing key reads as missing
    dicts[1]["dose"] = None
    tuples = [tuple(d.get(c, np.nan) for c in schema.features) for d in dicts]
    expected = to_frame(pd.DataFrame.from_records(dicts), schema)
    for records in (dicts, tuples):
        pd.testing.assert_frame_equal(to_frame(records, schema), expected, check_exact=True)
        assert np.array_equal(predict_proba(trained, records), predict_proba(trained, expected), equal_nan=True)


def test_numeric_fast_path_is_one_float64_block_in_schema_order() -> None:
    frame = to_frame([{"dose": 2, "age": 1, "ignored": "x"}], NUMERIC)
    assert list(frame.columns) == ["age", "dose"]
    assert frame.dtypes.tolist() == [np.float64, np.float64]
    assert frame.to_numpy().tolist() == [[1.0, 2.0]]
