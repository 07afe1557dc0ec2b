"""model.to_frame's fast paths (dicts or tuples for the service, one float64 block for numeric schemas) give the
exact frame, and so the exact probabilities, of the general DataFrame path that `evaluate` takes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltemplate import estimators
from mltemplate import model as model_files
from mltemplate.schema import Schema
from tests.conftest import trained_model

MIXED = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")
NUMERIC = Schema(numeric=("age", "dose"), categorical=(), target="outcome", positive_class="sick")


def _trained(schema: Schema, frame: pd.DataFrame) -> model_files.TrainedModel:
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
    expected = model_files.to_frame(pd.DataFrame.from_records(dicts), schema)
    for records in (dicts, tuples):
        pd.testing.assert_frame_equal(model_files.to_frame(records, schema), expected, check_exact=True)
        assert np.array_equal(
            model_files.predict_proba(trained, records), model_files.predict_proba(trained, expected), equal_nan=True
        )


def test_numeric_fast_path_is_one_float64_block_in_schema_order() -> None:
    frame = model_files.to_frame([{"dose": 2, "age": 1, "ignored": "x"}], NUMERIC)
    assert list(frame.columns) == ["age", "dose"]
    assert frame.dtypes.tolist() == [np.float64, np.float64]
    assert frame.to_numpy().tolist() == [[1.0, 2.0]]
