"""Request models generated from the saved schema: strict, finite, closed, bounded."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from mltemplate.metadata import ModelMetadata
from mltemplate.model import TrainedModel
from mltemplate.schema import Schema
from mltemplate.serving.payloads import predictions, record_model, request_model, response_model
from tests.conftest import DESCRIPTION

SCHEMA = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")
GOOD = {"age": 50, "dose": 2.5, "site": "north"}


def _errors(body: object, max_rows: int = 3) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        request_model(SCHEMA, max_rows=max_rows).model_validate_json(json.dumps(body, allow_nan=True))
    return [(".".join(map(str, e["loc"])), e["type"]) for e in caught.value.errors()]


def test_valid_request_keeps_schema_order() -> None:
    parsed = request_model(SCHEMA, max_rows=3).model_validate_json(json.dumps({"records": [GOOD]}))
    record = parsed.records[0]  # type: ignore[attr-defined]
    assert list(record.__dict__) == list(SCHEMA.features)
    assert record.age == 50.0


@pytest.mark.parametrize(
    ("record", "where", "kind"),
    [
        ({**GOOD, "age": "50"}, "records.0.age", "float_type"),
        ({**GOOD, "age": True}, "records.0.age", "float_type"),
        ({**GOOD, "age": None}, "records.0.age", "float_type"),
        ({**GOOD, "age": math.nan}, "records.0.age", "finite_number"),
        ({**GOOD, "dose": -math.inf}, "records.0.dose", "finite_number"),
        ({**GOOD, "site": 3}, "records.0.site", "string_type"),
        ({"age": 1, "dose": 2}, "records.0.site", "missing"),
        ({**GOOD, "extra": 1}, "records.0.extra", "extra_forbidden"),
    ],
)
def test_bad_record_is_named(record: dict[str, object], where: str, kind: str) -> None:
    assert (where, kind) in _errors({"records": [record]})


@pytest.mark.parametrize(
    ("body", "where", "kind"),
    [
        ({"records": []}, "records", "too_short"),
        ({"records": [GOOD] * 4}, "records", "too_long"),
        ({"records": [GOOD], "more": 1}, "more", "extra_forbidden"),
        ([GOOD], "", "model_type"),
    ],
)
def test_bad_shape_is_named(body: object, where: str, kind: str) -> None:
    assert (where, kind) in _errors(body)


def test_record_model_has_examples_for_the_openapi_page() -> None:
    schema = record_model(SCHEMA).model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["age"]["examples"] == [0.0]


def _metadata(schema: Schema, classes: list[str]) -> ModelMetadata:
    return ModelMetadata.model_validate({**DESCRIPTION, "schema": schema, "classes": classes, "model_md5": "0" * 32})


REGRESSION = Schema(
    numeric=("age", "dose"), categorical=("site",), target="price", positive_class=None, task="regression"
)


def test_a_regression_response_holds_one_number_per_record() -> None:
    response = response_model(_metadata(REGRESSION, []))
    body = response.model_validate({"model_version": "v", "predictions": [{"value": 1.5}, {"value": -2}]})
    assert body.model_dump()["predictions"] == [{"value": 1.5}, {"value": -2.0}]
    with pytest.raises(ValidationError):
        response.model_validate({"model_version": "v", "predictions": [{"label": "a", "probabilities": {}}]})


def test_a_classification_response_example_names_the_models_classes() -> None:
    schema = Schema(numeric=("age",), categorical=(), target="tier", positive_class=None, task="multiclass")
    response = response_model(_metadata(schema, ["high", "low", "mid"]))
    (example,) = response.model_json_schema()["properties"]["predictions"]["examples"]
    assert set(example[0]["probabilities"]) == {"high", "low", "mid"}


def test_predictions_of_a_regression_model_are_its_predicted_numbers() -> None:
    trained = TrainedModel(pipeline=None, metadata=_metadata(REGRESSION, []))  # type: ignore[arg-type]
    assert predictions(trained, np.array([1.25, 3.0])) == [{"value": 1.25}, {"value": 3.0}]
