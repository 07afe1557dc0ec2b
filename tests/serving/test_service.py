"""The prediction service under a real `bentoml serve` (one server for the module): answers, metadata, probes,
and a clear 4xx naming the field for every kind of bad input; afterwards it still answers correctly."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mltemplate import dvcfiles, git
from mltemplate.identity import head_version
from mltemplate.model import TrainedModel, load
from mltemplate.params import load_params
from mltemplate.predict import labels, predict
from mltemplate.report.loadtest import Server, served
from tests.conftest import nudged_hyperparameter, run
from tests.pipeline.test_pipeline import edit_params
from tests.service_client import Reply, json_records, post_json, request

pytestmark = pytest.mark.integration

MAX_ROWS = 5
MAX_BODY_BYTES = 65536
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(pipeline_repo: Path, start_service: Callable[..., Server]) -> str:
    env = {"SERVE_WORKERS": "1", "SERVE_MAX_ROWS": str(MAX_ROWS), "SERVE_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
    # As `make serve` does: write models/release.json (git-ignored), which names the model's MLflow run.
    run([sys.executable, "-m", "mltemplate.release.provenance", "write"], cwd=pipeline_repo)
    return start_service(pipeline_repo, **env).url


@pytest.fixture(scope="module")
def example(pipeline_repo: Path) -> dict[str, Any]:
    return dict(json.loads((pipeline_repo / "examples/predict.json").read_text()))


@pytest.fixture(scope="module")
def trained(pipeline_repo: Path) -> TrainedModel:
    return load(model_path=pipeline_repo / "models/model.skops", metadata_path=pipeline_repo / "models/metadata.json")


def _served(reply: Reply, trained: TrainedModel) -> np.ndarray:
    """The answers in `predict`'s shape: class probabilities (rows x classes), or a regression's values."""
    predictions = reply.json()["predictions"]
    if not trained.schema.classification:
        return np.array([p["value"] for p in predictions])
    return np.array([[p["probabilities"][c] for c in trained.classes] for p in predictions])


def test_example_gets_the_in_process_prediction_and_the_version(
    server: str, example: dict[str, Any], trained: TrainedModel, pipeline_repo: Path
) -> None:
    reply = post_json(server, example)
    assert reply.status == 200, reply.text
    body = reply.json()
    assert body["model_version"] == head_version(pipeline_repo)
    expected = predict(trained, example["records"])
    assert np.array_equal(_served(reply, trained), expected)  # JSON floats round-trip exactly
    if trained.schema.classification:
        assert [p["label"] for p in body["predictions"]] == labels(trained, expected)


def test_many_records_are_answered_in_order(server: str, trained: TrainedModel, pipeline_repo: Path) -> None:
    test = pd.read_csv(pipeline_repo / "data/prepared/test.csv")
    records = json_records(test[list(trained.schema.features)].head(MAX_ROWS))
    reply = post_json(server, {"records": records})
    assert reply.status == 200, reply.text
    assert np.array_equal(_served(reply, trained), predict(trained, records))


def test_metadata_names_model_version_data_hash_and_schema(
    server: str, trained: TrainedModel, pipeline_repo: Path
) -> None:
    reply = request(server, "/metadata", method="GET")
    assert reply.status == 200, reply.text
    meta = reply.json()
    assert meta["name"] == trained.metadata.name
    made = trained.metadata
    assert (meta["estimator"], meta["hyperparameters"]) == (made.estimator, made.hyperparameters)
    assert (meta["seed"], meta["data"]["md5"]) == (made.seed, made.data.md5)
    assert meta["version"] == head_version(pipeline_repo)
    assert meta["model_md5"] == dvcfiles.locked_md5(
        pipeline_repo / "models/model.skops", lock=pipeline_repo / "dvc.lock"
    )
    assert meta["data_md5"] == trained.metadata.data.md5
    assert meta["git_commit"].startswith(git.commit(pipeline_repo).removesuffix("-dirty"))
    assert meta["mlflow_run_id"]  # dvc repro logged the model to MLflow in the copy; `release write` found it
    assert meta["metrics"] == json.loads((pipeline_repo / "metrics.json").read_text())
    features = meta["input_schema"]["features"]
    assert [f["name"] for f in features] == list(trained.schema.features)
    assert [f["type"] for f in features] == [
        "number" if name in trained.schema.numeric else "string" for name in trained.schema.features
    ]
    assert meta["classes"] == trained.classes
    assert meta["trained_at"]
    assert meta["built_at"]


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_probes_answer(server: str, path: str) -> None:
    assert request(server, path, method="GET").status == 200


def test_metadata_is_what_the_model_was_built_with_whatever_params_yaml_says(
    pipeline_repo: Path, trained: TrainedModel, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    params = load_params(repo / "params.yaml")
    key, value = nudged_hyperparameter(params)
    edit_params(repo, **{key.replace(".", "__"): value})  # edited, not retrained: the model is the one it was
    with served(repo, env={"SERVE_WORKERS": "1"}) as url:
        before = request(url, "/metadata", method="GET").json()
        edit_params(repo, seed=params.seed + 1)
        (repo / "metrics.json").unlink()
        after = request(url, "/metadata", method="GET").json()
    edited = load_params(repo / "params.yaml").model.selected
    assert before["hyperparameters"] == trained.metadata.hyperparameters != edited
    assert before["seed"] == trained.metadata.seed
    assert before["metrics"] == json.loads((pipeline_repo / "metrics.json").read_text())
    assert after == before  # built once at start-up: nothing is re-read per request


def test_prometheus_metrics_count_predictions(server: str, example: dict[str, Any]) -> None:
    post_json(server, example)
    reply = request(server, "/metrics", method="GET")
    assert reply.status == 200
    assert 'endpoint="/predict"' in reply.text
    assert "bentoml_service_request_total" in reply.text


def test_openapi_page_documents_the_generated_request(server: str, trained: TrainedModel) -> None:
    assert request(server, "/", method="GET").status == 200
    spec = request(server, "/docs.json", method="GET").json()
    assert "/predict" in spec["paths"]
    record = spec["components"]["schemas"]["Record"]["properties"]
    assert list(record) == list(trained.schema.features)
    for name in trained.schema.features:
        nullable = {"type": "null"} in record[name].get("anyOf", [])
        assert nullable == (name in trained.metadata.nullable), record[name]
    for name, known in trained.metadata.categories.items():
        assert record[name]["x-known-values"] == known


def _record(example: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**example["records"][0], **changes}


def _without(example: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in example["records"][0].items() if k != name}


def _literal(example: dict[str, Any], x: str, token: str) -> bytes:
    """The example with feature x replaced by a raw JSON token (NaN, Infinity, 1e400 are not in Python's JSON)."""
    record = json.dumps(_record(example, **{x: "__TOKEN__"}))
    return ('{"records": [' + record.replace('"__TOKEN__"', token) + "]}").encode()


@pytest.fixture(scope="module")
def x(trained: TrainedModel) -> str:
    """A numeric feature that never had a missing value in training (so null is refused), from the model itself."""
    found = [name for name in trained.schema.numeric if name not in trained.metadata.nullable]
    if not found:
        pytest.skip("the model has no numeric feature that refuses null")
    return found[0]


Body = bytes | dict[str, Any] | list[Any]
BAD_BODIES: dict[str, tuple[Body | Callable[[dict[str, Any], str, str], Body], str]] = {
    # case: (body, or a callable of (example, x: a numeric feature, last: the last feature); the field to name,
    # where {x} and {last} stand for those features)
    "malformed JSON": (b'{"records": [', "body"),
    "empty body": (b"", "records"),
    "string for a number": (lambda ex, x, _: {"records": [_record(ex, **{x: "20.3"})]}, "records.0.{x}"),
    "bool for a number": (lambda ex, x, _: {"records": [_record(ex, **{x: True})]}, "records.0.{x}"),
    "null": (lambda ex, x, _: {"records": [_record(ex, **{x: None})]}, "records.0.{x}"),
    "NaN": (lambda ex, x, _: _literal(ex, x, "NaN"), "records.0.{x}"),
    "Infinity": (lambda ex, x, _: _literal(ex, x, "Infinity"), "records.0.{x}"),
    "-Infinity": (lambda ex, x, _: _literal(ex, x, "-Infinity"), "records.0.{x}"),
    "out of float range": (lambda ex, x, _: _literal(ex, x, "1e400"), "records.0.{x}"),
    "huge integer": (lambda ex, x, _: _literal(ex, x, "9" * 400), "records.0.{x}"),
    "missing field": (lambda ex, _, last: {"records": [_without(ex, last)]}, "records.0.{last}"),
    "extra field": (lambda ex, x, _: {"records": [_record(ex, not_a_feature_xyz=7)]}, "records.0.not_a_feature_xyz"),
    "empty batch": ({"records": []}, "records"),
    "oversized batch": (lambda ex, x, _: {"records": [ex["records"][0]] * (MAX_ROWS + 1)}, "records"),
    "top-level list": (lambda ex, x, _: ex["records"], "body"),
    "wrong top-level key": (lambda ex, x, _: {"rows": ex["records"]}, "records"),
    "extra top-level key": (lambda ex, x, _: {**ex, "debug": True}, "debug"),
    "records not a list": (lambda ex, x, _: {"records": {x: 1}}, "records"),
    "record not an object": ({"records": [1]}, "records.0"),
    "deep nesting": (b"[" * 20000 + b"]" * 20000, "body"),
    "deep nesting in a field": (
        lambda ex, x, _: f'{{"records": [{{"{x}": '.encode() + b"[" * 5000 + b"]" * 5000 + b"}]}",
        "body",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_input_gets_400_naming_the_field(
    server: str, example: dict[str, Any], trained: TrainedModel, x: str, case: str
) -> None:
    payload, field = BAD_BODIES[case]
    last = trained.schema.features[-1]
    if callable(payload):
        payload = payload(example, x, last)
    field = field.format(x=x, last=last)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    reply = request(server, "/predict", body=body, headers=JSON)
    assert reply.status == 400, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()
    assert error["field"] == field, error
    assert error["error"].startswith(f"{field}: ")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_non_json_content_type_gets_415(server: str, example: dict[str, Any], content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    reply = request(server, "/predict", body=json.dumps(example).encode(), headers=headers)
    assert reply.status == 415, reply.text
    assert reply.json()["field"] == "Content-Type"


def test_body_over_the_limit_gets_413(server: str) -> None:
    reply = request(server, "/predict", body=b" " * (MAX_BODY_BYTES + 1), headers=JSON)
    assert reply.status == 413, reply.text
    assert reply.json()["field"] == "body"


def test_chunked_body_over_the_limit_gets_413(server: str) -> None:
    chunks = iter([b" " * 40000, b" " * 40000])
    reply = request(server, "/predict", body=chunks, headers=JSON)
    assert reply.status == 413, reply.text


def test_chunked_body_within_the_limit_is_answered(server: str, example: dict[str, Any]) -> None:
    text = json.dumps(example).encode()
    reply = request(server, "/predict", body=iter([text[:50], text[50:]]), headers=JSON)
    assert reply.status == 200, reply.text


def test_get_on_predict_is_405(server: str) -> None:
    assert request(server, "/predict", method="GET").status == 405


def test_still_answers_correctly_after_all_of_that(server: str, example: dict[str, Any], trained: TrainedModel) -> None:
    reply = post_json(server, example)
    assert reply.status == 200, reply.text
    assert np.array_equal(_served(reply, trained), predict(trained, example["records"]))
    assert request(server, "/readyz", method="GET").status == 200
