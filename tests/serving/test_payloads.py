"""Request models generated from the saved schema: strict, finite, closed, bounded; the /metadata document."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from mltemplate.dvcfiles import md5
from mltemplate.identity import Release
from mltemplate.model import TrainedModel
from mltemplate.model_metadata import ModelMetadata
from mltemplate.schema import Schema
from mltemplate.serving.payloads import (
    SMALL_BODY_BYTES,
    describe,
    held_out_metrics,
    predictions,
    record_model,
    request_model,
    response_model,
)
from tests.conftest import DESCRIPTION

SCHEMA = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")
GOOD = {"age": 50, "dose": 2.5, "site": "north"}


PADDING = " " * (SMALL_BODY_BYTES + 1)
"""Trailing whitespace past what any valid body of the test schema fills: the body takes the two-step parse."""


@pytest.fixture(params=["fast", "two-step"])
def padding(request: pytest.FixtureRequest) -> str:
    return "" if request.param == "fast" else PADDING


def _errors(body: object, max_rows: int = 3, padding: str = "") -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        request_model(SCHEMA, max_rows=max_rows).model_validate_json(json.dumps(body, allow_nan=True) + padding)
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
def test_bad_record_is_named(record: dict[str, object], where: str, kind: str, padding: str) -> None:
    assert (where, kind) in _errors({"records": [record]}, padding=padding)


@pytest.mark.parametrize(
    ("body", "where", "kind"),
    [
        ({"records": []}, "records", "too_short"),
        ({"records": [GOOD] * 4}, "records", "too_long"),
        ({"records": [GOOD], "more": 1}, "more", "extra_forbidden"),
        ([GOOD], "", "model_type"),
    ],
)
def test_bad_shape_is_named(body: object, where: str, kind: str, padding: str) -> None:
    assert (where, kind) in _errors(body, padding=padding)


def test_two_step_parse_gives_the_same_request(padding: str) -> None:
    model = request_model(SCHEMA, max_rows=3)
    body = json.dumps({"records": [GOOD, {**GOOD, "site": "[north]"}]})
    assert model.model_validate_json(body + padding) == model.model_validate_json(body)


def test_invalid_json_is_named_body_in_the_two_step_parse() -> None:
    assert ("", "json_invalid") in _errors_raw('{"records": [' + PADDING)


def _errors_raw(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        request_model(SCHEMA, max_rows=3).model_validate_json(text)
    return [(".".join(map(str, e["loc"])), e["type"]) for e in caught.value.errors()]


@pytest.mark.parametrize("shape", ["nested lists", "many records", "many keys"])
def test_implausible_bodies_take_the_two_step_parse(shape: str) -> None:
    model = request_model(SCHEMA, max_rows=3)
    pad = "0," * SMALL_BODY_BYTES
    body = {
        "nested lists": '{"records": [{"age": [[' + pad + "0]]}]}",
        "many records": '{"records": [' + "{}," * SMALL_BODY_BYTES + "{}]}",
        "many keys": '{"records": [{' + "".join(f'"k{i}": 0,' for i in range(SMALL_BODY_BYTES // 8)) + '"a": 0}]}',
    }[shape].encode()
    assert not model.plausible(body)


MEMORY_PROBE = """
import resource
from pydantic import ValidationError
from mltemplate.schema import Schema
from mltemplate.serving.payloads import request_model

features = tuple(f"feature_{i}" for i in range(30))
model = request_model(Schema(numeric=features, categorical=(), target="y", positive_class="a"), max_rows=1024)
body = b'{"records": [{"feature_0": [' + b"[]," * (4 * 2**20 // 3 - 20) + b'[]]}]}'
# Address space, not RSS: the interpreter and its libraries already map memory they never touch.
mapped = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (mapped + 2**30, mapped + 2**30))
try:
    model.model_validate_json(body)
except ValidationError as error:
    print(error.error_count())
"""


@pytest.mark.integration  # a real process under a real address-space limit; seconds, not milliseconds
@pytest.mark.skipif(sys.platform != "linux", reason="address-space limits as Linux applies them")
def test_a_body_of_nested_lists_is_refused_within_bounded_memory(tmp_path: Path) -> None:
    """Parsed straight from JSON, this 4 MiB body costs pydantic ~4.5 GiB (the record copied per missing field);
    the two-step parse stays near 30x the body. Here the process may not grow by more than 1 GiB."""
    script = tmp_path / "probe.py"
    script.write_text(MEMORY_PROBE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) >= 1


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
    body = response.model_validate(
        {"request_id": "r", "model_version": "v", "predictions": [{"value": 1.5}, {"value": -2}]}
    )
    assert body.model_dump()["predictions"] == [{"value": 1.5}, {"value": -2.0}]
    with pytest.raises(ValidationError):
        response.model_validate(
            {"request_id": "r", "model_version": "v", "predictions": [{"label": "a", "probabilities": {}}]}
        )


def test_a_classification_response_example_names_the_models_classes() -> None:
    schema = Schema(numeric=("age",), categorical=(), target="tier", positive_class=None, task="multiclass")
    response = response_model(_metadata(schema, ["high", "low", "mid"]))
    (example,) = response.model_json_schema()["properties"]["predictions"]["examples"]
    assert set(example[0]["probabilities"]) == {"high", "low", "mid"}


def test_predictions_of_a_regression_model_are_its_predicted_numbers() -> None:
    trained = TrainedModel(pipeline=None, metadata=_metadata(REGRESSION, []))  # type: ignore[arg-type]
    assert predictions(trained, np.array([1.25, 3.0]), None) == [{"value": 1.25}, {"value": 3.0}]


RELEASE = Release(
    version="2024.01.02-030405-abcdef0",
    git_commit="abcdef0" * 5 + "ab",
    model_md5="0" * 32,
    data_md5="d" * 32,
    mlflow_run_id=None,
    trained_at="2024-01-02T03:04:05+00:00",
    built_at="2024-01-03T00:00:00+00:00",
    model_key="0123456789abcdef",
)


def test_metadata_document_is_what_the_models_files_record(chdir_tmp: Path) -> None:
    made = _metadata(SCHEMA, ["sick", "well"]).model_copy(
        update={"hyperparameters": {"C": 0.5}, "seed": 7, "categories": {"site": ["north", "south"]}}
    )
    trained = TrainedModel(pipeline=None, metadata=made)  # type: ignore[arg-type]
    # A params.yaml that says otherwise: /metadata reports how the model was built, not what params.yaml says now.
    (chdir_tmp / "params.yaml").write_text("seed: 99\nmodel: {estimator: random_forest}\n")
    document = describe(trained, RELEASE, {"recall": 0.9})
    assert (document["estimator"], document["hyperparameters"], document["seed"]) == (made.estimator, {"C": 0.5}, 7)
    assert document["data"] == made.data.model_dump(mode="json")
    assert (document["version"], document["model_key"]) == (RELEASE.version, RELEASE.model_key)
    assert document["metrics"] == {"recall": 0.9}
    assert "params" not in document
    assert json.loads(json.dumps(document)) == document  # served as JSON as it is


def test_held_out_metrics_are_the_metrics_json_dvc_lock_records(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"recall": 0.9}\n')
    lock = tmp_path / "dvc.lock"
    lock.write_text(f"stages:\n  evaluate:\n    outs:\n    - path: metrics.json\n      md5: {md5(metrics)}\n")
    assert held_out_metrics(metrics, lock=lock) == {"recall": 0.9}


def test_metrics_json_edited_after_the_pipeline_is_not_served(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"recall": 0.9}\n')
    lock = tmp_path / "dvc.lock"
    lock.write_text(f"stages:\n  evaluate:\n    outs:\n    - path: metrics.json\n      md5: {md5(metrics)}\n")
    metrics.write_text('{"recall": 0.99}\n')
    assert held_out_metrics(metrics, lock=lock) is None
    assert "is not the file" in caplog.text
    assert held_out_metrics(tmp_path / "absent.json", lock=lock) is None
