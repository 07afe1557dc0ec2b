"""serving/v2.py's decoding: tensors of every accepted form give the frame records give, and every tensor the
protocol or the model refuses is refused naming the input (models fitted here, mixed and all-numeric)."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from mltemplate import estimators
from mltemplate.diagnosis import Unscorable
from mltemplate.model import TrainedModel
from mltemplate.predict import to_frame
from mltemplate.schema import Schema
from mltemplate.serving import v2
from mltemplate.serving.batching import Overloaded
from mltemplate.serving.scorer import Answer, Refused
from tests.conftest import trained_model

MIXED = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")
NUMERIC = Schema(numeric=("age", "dose"), categorical=(), target="outcome", positive_class="sick")


def _fitted(schema: Schema, frame: pd.DataFrame, **metadata: Any) -> TrainedModel:
    estimator = estimators.make_estimator("logistic_regression", {})
    pipeline = estimators.build_pipeline(numeric=schema.numeric, categorical=schema.categorical, estimator=estimator)
    pipeline.fit(to_frame(frame, schema), frame["outcome"])
    return trained_model(pipeline, schema, **metadata)


@pytest.fixture
def mixed(mixed_frame: pd.DataFrame) -> TrainedModel:
    return _fitted(MIXED, mixed_frame.dropna(), name="demo")


@pytest.fixture
def numeric(mixed_frame: pd.DataFrame) -> TrainedModel:
    return _fitted(NUMERIC, mixed_frame.dropna(), name="demo", nullable=["dose"])


def tensor(name: str, data: list[Any], datatype: str = "FP64", shape: list[int] | None = None) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


ROWS = [(61.0, 4.0, "north"), (30.0, 2.5, "east")]


def test_a_tensor_per_feature_gives_the_frame_of_the_records(mixed: TrainedModel) -> None:
    inputs = [
        tensor("site", ["north", "east"], "BYTES"),
        tensor("age", [61, 30], "INT64"),
        tensor("dose", [[4.0], [2.5]], shape=[2, 1]),
    ]
    frame = v2.decode(inputs, mixed, max_rows=10).frame()
    pd.testing.assert_frame_equal(frame, to_frame(ROWS, MIXED), check_exact=True)


@pytest.mark.parametrize("nested", [False, True])
def test_one_numeric_block_gives_the_frame_of_the_records(numeric: TrainedModel, nested: bool) -> None:
    data: list[Any] = [[61.0, 4.0], [30.0, None]] if nested else [61.0, 4.0, 30.0, None]
    frame = v2.decode([tensor("input-0", data, shape=[2, 2])], numeric, max_rows=10).frame()
    pd.testing.assert_frame_equal(frame, to_frame([(61.0, 4.0), (30.0, None)], NUMERIC), check_exact=True)


def test_bool_tensors_are_numbers_zero_and_one(numeric: TrainedModel) -> None:
    block = v2.decode([tensor("age", [True, False], "BOOL"), tensor("dose", [1.0, 2.0])], numeric, max_rows=10)
    assert block.numeric[:, 0].tolist() == [1.0, 0.0]


def _mixed_inputs(**replace: dict[str, Any]) -> list[dict[str, Any]]:
    base = {
        "age": tensor("age", [61.0, 30.0]),
        "dose": tensor("dose", [4.0, 2.5]),
        "site": tensor("site", ["north", "east"], "BYTES"),
    }
    return list({**base, **replace}.values())


BAD: dict[str, tuple[Any, str]] = {
    "not a list": ({"name": "age"}, "inputs must be a non-empty list"),
    "unknown input": (_mixed_inputs(extra=tensor("extra", [1.0, 2.0])), "input 'extra' is not a feature"),
    "missing input": (_mixed_inputs()[:2], "input 'site' is missing"),
    "twice": ([*_mixed_inputs(), tensor("age", [1.0, 2.0])], "more than once"),
    "text for a number": (_mixed_inputs(age=tensor("age", ["61", "30"], "BYTES")), "input 'age' is 'BYTES'"),
    "number for a category": (_mixed_inputs(site=tensor("site", [1.0, 2.0])), "input 'site' is 'FP64'"),
    "string in FP64": (_mixed_inputs(age=tensor("age", [61.0, "x"])), "input 'age' (FP64): element 1 is 'x'"),
    "bool in FP64": (_mixed_inputs(age=tensor("age", [61.0, True])), "input 'age' (FP64): element 1 is True"),
    "float in INT64": (_mixed_inputs(age=tensor("age", [1.5, 2], "INT64")), "element 0 is 1.5, not an integer"),
    "outside INT8": (_mixed_inputs(age=tensor("age", [300, 2], "INT8")), "element 0 is 300, outside INT8"),
    "null": (_mixed_inputs(age=tensor("age", [None, 2.0])), "input 'age' (FP64): element 0 is None"),
    "shape and data disagree": (_mixed_inputs(age=tensor("age", [1.0, 2.0], shape=[3])), "input 'age': shape [3]"),
    "bad shape": (_mixed_inputs(age=tensor("age", [1.0, 2.0], shape=[1, 2])), "input 'age': shape [1, 2] is not"),
    "shape not a list": (_mixed_inputs(age={**tensor("age", [1.0]), "shape": "1"}), "input 'age': shape must be"),
    "unequal rows": (_mixed_inputs(age=tensor("age", [1.0])), "'dose' has 2 values, 'age' 1"),
    "too many rows": (_mixed_inputs(age=tensor("age", [1.0] * 11)), "input 'age': 11 rows; a request holds 1 to 10"),
    "no data": (_mixed_inputs(age={"name": "age", "datatype": "FP64", "shape": [2]}), "input 'age' has no data"),
    "mixed nesting": (_mixed_inputs(age=tensor("age", [[1.0], 2.0], shape=[2, 1])), "mixes arrays and values"),
    "category not text": (_mixed_inputs(site=tensor("site", ["a", 1], "BYTES")), "input 'site' is not text"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_tensors_are_refused_naming_the_input(mixed: TrainedModel, case: str) -> None:
    inputs, message = BAD[case]
    with pytest.raises(v2.TensorError, match=re.escape(message)):
        v2.decode(inputs, mixed, max_rows=10)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([tensor("x", [1.0, 2.0, 3.0], shape=[1, 3])], "input 'x': shape [1, 3] is not [rows, 2]"),
        ([tensor("x", [1.0, 2.0])], "input 'x' is not a feature of the model: send one tensor per feature"),
        ([tensor("x", [np.inf, 2.0], shape=[1, 2])], "input 'x': feature 'age' is not a finite number"),
        ([tensor("x", ["a", "b"], "BYTES", shape=[1, 2])], "input 'x' is 'BYTES'"),
    ],
)
def test_bad_numeric_blocks_are_refused_naming_the_input(numeric: TrainedModel, inputs: Any, message: str) -> None:
    with pytest.raises(v2.TensorError, match=re.escape(message)):
        v2.decode(inputs, numeric, max_rows=10)


def test_model_metadata_lists_a_tensor_per_feature_and_the_outputs_of_the_task(mixed: TrainedModel) -> None:
    meta = v2.model_metadata(mixed, "1.0")
    assert meta["name"] == "demo"
    assert meta["versions"] == ["1.0"]
    inputs = [(t["name"], t["datatype"]) for t in meta["inputs"]]
    assert inputs == [("age", "FP64"), ("dose", "FP64"), ("site", "BYTES")]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["outputs"]] == [
        ("label", "BYTES", [-1]),
        ("probabilities", "FP64", [-1, len(mixed.classes)]),
    ]


class StubScorer:
    """The service as v2.py sees it, answering with `answer_with` (an Answer, or an exception to raise)."""

    def __init__(self, model: TrainedModel, answer_with: Any) -> None:
        self.model, self.answer_with, self.max_rows = model, answer_with, 10
        self.release = SimpleNamespace(version="1.0")
        self.seen: list[str] = []  # the client X-Request-IDs it was given

    async def answer(self, rows: Any, client_request_id: str | None) -> Answer:
        self.seen.append(client_request_id or "")
        if isinstance(self.answer_with, Exception):
            raise self.answer_with
        return self.answer_with


def _client(monkeypatch: pytest.MonkeyPatch, stub: StubScorer) -> TestClient:
    monkeypatch.setattr(v2, "scorer", lambda: stub)
    return TestClient(v2.app)


def _infer(client: TestClient, **headers: str) -> Any:
    body = {"id": "mine", "inputs": _mixed_inputs()}
    return client.post("/v2/models/demo/infer", content=json.dumps(body), headers=headers)


def test_the_answer_goes_out_as_a_tensor_per_output(monkeypatch: pytest.MonkeyPatch, mixed: TrainedModel) -> None:
    output = np.array([[0.25, 0.75], [0.5, 0.5]])
    stub = StubScorer(mixed, Answer(output, ["well", "sick"], "r1"))
    reply = _infer(_client(monkeypatch, stub), **{"X-Request-ID": "rid-1"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["model_name"], body["model_version"], body["id"], stub.seen) == ("demo", "1.0", "mine", ["rid-1"])
    assert reply.headers["x-request-id"] == "r1"  # the service's id of the answer, not the client's
    assert body["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["well", "sick"]},
        {"name": "probabilities", "datatype": "FP64", "shape": [2, 2], "data": [0.25, 0.75, 0.5, 0.5]},
    ]


@pytest.mark.parametrize(
    ("raised", "status", "words"),
    [
        (
            Refused(Unscorable(1, "dose", 1e308), "1e+308 is outside what the model can score"),
            400,
            "input 'dose', row 1",
        ),
        (Refused(Unscorable(0, None), "the model cannot score this record"), 400, "row 0: the model cannot"),
        (Overloaded("65536 rows already wait"), 503, "rows already wait"),
    ],
)
def test_refusals_of_the_service_become_status_codes(
    monkeypatch: pytest.MonkeyPatch, mixed: TrainedModel, raised: Exception, status: int, words: str
) -> None:
    reply = _infer(_client(monkeypatch, StubScorer(mixed, raised)))
    assert (reply.status_code, list(reply.json())) == (status, ["error"])
    assert words in reply.json()["error"]


@pytest.mark.parametrize(
    ("path", "headers", "status", "words"),
    [
        ("/v2/models/other/infer", {}, 404, "unknown model 'other': this server serves 'demo'"),
        ("/v2/models/demo/versions/2.0/infer", {}, 404, "has no version '2.0': it serves '1.0'"),
        ("/v2/models/demo/infer", {"Inference-Header-Content-Length": "10"}, 400, "binary tensor extension"),
    ],
)
def test_requests_for_other_models_or_binary_tensors_are_refused(
    monkeypatch: pytest.MonkeyPatch, mixed: TrainedModel, path: str, headers: dict[str, str], status: int, words: str
) -> None:
    client = _client(monkeypatch, StubScorer(mixed, RuntimeError("not called")))
    reply = client.post(path, content=json.dumps({"inputs": _mixed_inputs()}), headers=headers)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2", {"name": "prediction-service", "version": "1.0", "extensions": []}),
        ("/v2/health/live", {"live": True}),
        ("/v2/health/ready", {"ready": True}),
        ("/v2/models/demo/ready", {"name": "demo", "ready": True}),
        ("/v2/models/demo/versions/1.0/ready", {"name": "demo", "ready": True}),
    ],
)
def test_health_and_server_metadata(monkeypatch: pytest.MonkeyPatch, mixed: TrainedModel, path: str, body: Any) -> None:
    reply = _client(monkeypatch, StubScorer(mixed, None)).get(path)
    assert (reply.status_code, reply.json()) == (200, body)
