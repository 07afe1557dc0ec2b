"""The standard protocols under a real `bentoml serve`, called by clients nobody here wrote: tritonclient[http] and
the kserve package's REST client (Open Inference Protocol), MLflow's scoring client and `mlflow models serve` of the
model the train stage logged (MLflow's scoring protocol). All get /predict's predictions for the same rows; bad
bodies get a 4xx naming the input; every path's answers reach the prediction log under their request ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from mltemplate.model import TrainedModel, load
from mltemplate.probe import free_port
from mltemplate.report.loadtest import _stop, served
from tests.conftest import ROOT, subprocess_env
from tests.monitoring.test_service_log import logged, wait_for
from tests.service_client import post_json, request

pytestmark = pytest.mark.integration

ROWS = 5


@pytest.fixture(scope="module")
def trained(pipeline_repo: Path) -> TrainedModel:
    return load(model_path=pipeline_repo / "models/model.skops", metadata_path=pipeline_repo / "models/metadata.json")


@pytest.fixture(scope="module")
def rows(pipeline_repo: Path, trained: TrainedModel) -> pd.DataFrame:
    return pd.read_csv(pipeline_repo / "data/prepared/test.csv")[list(trained.schema.features)].head(ROWS)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('log') / 'predictions.db'}"


@pytest.fixture(scope="module")
def server(pipeline_repo: Path, database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    spool = tmp_path_factory.mktemp("spool")
    env = {"SERVE_WORKERS": "1", "MONITORING_DB_URL": database, "MONITORING_SPOOL_DIR": str(spool)}
    with served(pipeline_repo, env=env) as url:
        yield url


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return list(json.loads(rows.to_json(orient="records")))


@pytest.fixture(scope="module")
def expected(server: str, rows: pd.DataFrame) -> dict[str, Any]:
    """/predict's answer: labels and probabilities (classification) or values, in row order."""
    reply = post_json(server, {"records": _records(rows)})
    assert reply.status == 200, reply.text
    answers = reply.json()["predictions"]
    if "value" in answers[0]:
        return {"value": [a["value"] for a in answers]}
    classes = list(answers[0]["probabilities"])
    return {
        "label": [a["label"] for a in answers],
        "probabilities": [[a["probabilities"][c] for c in classes] for a in answers],
    }


def _tensors(rows: pd.DataFrame, trained: TrainedModel) -> list[dict[str, Any]]:
    return [
        {"name": name, "datatype": "FP64" if name in trained.schema.numeric else "BYTES", "data": rows[name].tolist()}
        for name in trained.schema.features
    ]


def test_tritonclient_gets_the_predictions_of_predict(
    server: str, rows: pd.DataFrame, trained: TrainedModel, expected: dict[str, Any]
) -> None:
    client = triton.InferenceServerClient(server.removeprefix("http://"))
    name = trained.metadata.name
    assert (client.is_server_live(), client.is_server_ready(), client.is_model_ready(name)) == (True, True, True)
    assert [t["name"] for t in client.get_model_metadata(name)["inputs"]] == list(trained.schema.features)
    inputs = []
    for tensor in _tensors(rows, trained):
        values = np.array(tensor["data"], dtype=object if tensor["datatype"] == "BYTES" else np.float64)
        infer_input = triton.InferInput(tensor["name"], list(values.shape), tensor["datatype"])
        infer_input.set_data_from_numpy(values, binary_data=False)
        inputs.append(infer_input)
    outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in expected]
    result = client.infer(name, inputs, outputs=outputs, request_id="triton-1")
    assert result.get_response()["id"] == "triton-1"
    for output, want in expected.items():
        got = result.as_numpy(output)
        got = [v.decode() if isinstance(v, bytes) else v for v in got.tolist()] if got.dtype == object else got
        assert np.array_equal(np.asarray(got), np.asarray(want)), output


def test_one_numeric_tensor_gets_the_predictions_of_predict(
    server: str, rows: pd.DataFrame, trained: TrainedModel, expected: dict[str, Any]
) -> None:
    if trained.schema.categorical:
        pytest.skip("the model has categorical features: one tensor per feature")
    matrix = rows.to_numpy(dtype=np.float64)
    infer_input = triton.InferInput("input-0", list(matrix.shape), "FP64")
    infer_input.set_data_from_numpy(matrix, binary_data=False)
    client = triton.InferenceServerClient(server.removeprefix("http://"))
    outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in expected]
    result = client.infer(trained.metadata.name, [infer_input], outputs=outputs)
    first = next(iter(expected))
    got = result.as_numpy(first).tolist()
    assert [v.decode() if isinstance(v, bytes) else v for v in got] == expected[first]


def test_the_kserve_client_gets_the_predictions_of_predict(
    server: str, rows: pd.DataFrame, trained: TrainedModel, expected: dict[str, Any], tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps(_tensors(rows, trained)))
    uv = os.environ.get("UV", str(ROOT / ".tools/uv/bin/uv"))
    script = ROOT / "tests/serving/kserve_v2_client.py"
    command = [uv, "run", "--project", str(ROOT / "tools/kserve-client"), "--locked", "python", str(script)]
    result = subprocess.run(
        [*command, server, trained.metadata.name, str(inputs)], env=subprocess_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert (answer["live"], answer["ready"], answer["model_ready"]) == (True, True, True)
    for output, want in expected.items():
        assert np.array_equal(np.asarray(answer["outputs"][output]), np.asarray(want)), output


def _mlflow_answers(expected: dict[str, Any]) -> list[Any]:
    return list(expected.get("label", expected.get("value", [])))


def test_mlflows_scoring_client_gets_the_predictions_of_predict(
    server: str, rows: pd.DataFrame, expected: dict[str, Any]
) -> None:
    client = ScoringServerClient("127.0.0.1", int(server.rsplit(":", 1)[1]))
    client.wait_server_ready(timeout=30)
    answer = client.invoke(rows).get_predictions(predictions_format="ndarray")
    assert list(np.asarray(answer).reshape(-1)) == _mlflow_answers(expected)


def _bodies(rows: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    records = _records(rows)
    json_bodies = {
        "dataframe_split": {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {name: rows[name].tolist() for name in rows.columns}},
    }
    bodies = {key: (json.dumps(body).encode(), "application/json") for key, body in json_bodies.items()}
    bodies["csv"] = (rows.to_csv(index=False).encode(), "text/csv")
    return bodies


@pytest.fixture(scope="module")
def mlflow_server(pipeline_repo: Path, trained: TrainedModel) -> Iterator[str]:
    """`mlflow models serve` of the model version the train stage registered, in the pipeline copy's MLflow."""
    from mlflow.tracking import MlflowClient

    tracking = f"sqlite:///{pipeline_repo / 'mlflow.db'}"
    versions = MlflowClient(tracking).search_model_versions(f"name = '{trained.metadata.name}'")
    newest = max(int(v.version) for v in versions)
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{trained.metadata.name}/{newest}"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    env = subprocess_env(MLFLOW_TRACKING_URI=tracking, MLFLOW_DISABLE_TELEMETRY="true")
    process = subprocess.Popen(
        command,
        cwd=pipeline_repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        ScoringServerClient("127.0.0.1", port).wait_server_ready(timeout=120, scoring_server_proc=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "instances", "inputs", "csv"])
def test_the_same_bodies_get_the_same_predictions_from_mlflow_models_serve(
    server: str, mlflow_server: str, rows: pd.DataFrame, expected: dict[str, Any], form: str
) -> None:
    body, content_type = _bodies(rows)[form]
    answers = [
        request(url, "/invocations", body=body, headers={"Content-Type": content_type})
        for url in (mlflow_server, server)
    ]
    assert [a.status for a in answers] == [200, 200], [a.text for a in answers]
    theirs, ours = (a.json()["predictions"] for a in answers)
    assert ours == theirs == _mlflow_answers(expected)


BAD_V2: dict[str, tuple[dict[str, Any] | bytes, int, str]] = {
    # case: (body, or bytes; status; words the error holds)
    "malformed JSON": (b'{"inputs": [', 400, "not valid JSON"),
    "no inputs": ({"id": "x"}, 400, "inputs must be a non-empty list"),
    "unknown input": ({"inputs": [{"name": "nope", "datatype": "FP64", "shape": [1], "data": [1.0]}]}, 400, "'nope'"),
}


@pytest.mark.parametrize("case", list(BAD_V2))
def test_bad_v2_bodies_get_a_4xx_naming_the_input(server: str, trained: TrainedModel, case: str) -> None:
    body, status, words = BAD_V2[case]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = request(
        server, f"/v2/models/{trained.metadata.name}/infer", body=data, headers={"Content-Type": "application/json"}
    )
    assert reply.status == status, reply.text
    assert words in reply.json()["error"]


def test_a_v2_feature_of_the_wrong_type_is_named(server: str, rows: pd.DataFrame, trained: TrainedModel) -> None:
    tensors = _tensors(rows, trained)
    tensors[0] = {**tensors[0], "datatype": "BYTES", "data": [str(v) for v in tensors[0]["data"]]}
    body = {"inputs": [{**t, "shape": [len(t["data"])]} for t in tensors]}
    reply = post_json(server, body, path=f"/v2/models/{trained.metadata.name}/infer")
    assert reply.status == 400, reply.text
    assert f"input {tensors[0]['name']!r}" in reply.json()["error"]


@pytest.mark.parametrize(
    ("path", "status"), [("/v2/models/other/infer", 404), ("/v2/models/{name}/versions/0.0/infer", 404)]
)
def test_v2_names_the_model_and_version_it_serves(server: str, trained: TrainedModel, path: str, status: int) -> None:
    reply = post_json(server, {"inputs": []}, path=path.format(name=trained.metadata.name))
    assert reply.status == status, reply.text
    assert trained.metadata.name in reply.json()["error"]


def test_bad_invocations_bodies_get_a_4xx_naming_the_input(server: str, rows: pd.DataFrame) -> None:
    missing = rows.columns[-1]
    body = {"dataframe_records": [{k: v for k, v in r.items() if k != missing} for r in _records(rows)]}
    reply = post_json(server, body, path="/invocations")
    assert (reply.status, reply.json()["field"], reply.json()["error_code"]) == (400, missing, "BAD_REQUEST")
    assert f"{missing!r} is missing" in reply.json()["message"]
    plain = request(server, "/invocations", body=b"x", headers={"Content-Type": "text/plain"})
    assert (plain.status, plain.json()["field"]) == (415, "Content-Type")


def test_every_path_logs_its_answers_under_their_request_ids(
    server: str, database: str, rows: pd.DataFrame, trained: TrainedModel
) -> None:
    v2 = json.dumps({"inputs": [{**t, "shape": [ROWS]} for t in _tensors(rows, trained)]}).encode()
    csv = rows.to_csv(index=False).encode()
    sent = {
        "log-predict": ("/predict", json.dumps({"records": _records(rows)}).encode(), "application/json"),
        "log-v2": (f"/v2/models/{trained.metadata.name}/infer", v2, "application/json"),
        "log-invocations": ("/invocations", csv, "text/csv"),
    }
    for request_id, (path, body, content_type) in sent.items():
        reply = request(server, path, body=body, headers={"Content-Type": content_type, "X-Request-ID": request_id})
        assert (reply.status, reply.headers["x-request-id"]) == (200, request_id), reply.text
    unnamed = request(server, "/invocations", body=csv, headers={"Content-Type": "text/csv"})
    given = unnamed.headers["x-request-id"]
    wanted = {(rid, position) for rid in [*sent, given] for position in range(ROWS)}
    wait_for(lambda: wanted <= set(logged(database)))
