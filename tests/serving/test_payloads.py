"""Request models generated from the saved schema: strict, finite, closed, bounded."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from mltemplate.schema import Schema
from mltemplate.serving.payloads import record_model, request_model

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
