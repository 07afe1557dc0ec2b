"""What a pipeline run logs to MLflow, read back through MlflowClient: the SQLite default and a real
`mlflow server` on PostgreSQL."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mltemplate import plots
from mltemplate.metrics import METRICS
from mltemplate.params import load_params
from mltemplate.probe import free_port
from mltemplate.registry import runs as tracking
from mltemplate.registry.__main__ import main as registry_main
from tests.conftest import run, subprocess_env
from tests.postgres import postgres_server


def test_tracking_uri_defaults_to_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert tracking.tracking_uri() == "http://mlflow.internal:5000"


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_the_registry_command_moves_no_alias(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # `champion` follows releases only (make promote / make rollback), so a second bookkeeping cannot diverge.
    with pytest.raises(SystemExit) as exited:
        registry_main([command])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def assert_run_is_complete(client: MlflowClient, repo: Path) -> None:
    params = load_params(repo / "params.yaml")
    name = params.name
    metadata = json.loads((repo / "models/metadata.json").read_text())
    metrics = json.loads((repo / "metrics.json").read_text())
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    (found,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.model_md5 = '{metadata['model_md5']}'"
    )
    data = found.data
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert data.tags[tracking.GIT_COMMIT_TAG] == head
    assert data.tags[tracking.DATA_MD5_TAG] == metadata["data"]["md5"]
    assert data.params["model.estimator"] == params.model.estimator
    for key, value in params.model.selected.items():
        assert data.params[f"model.hyperparameters.{params.model.estimator}.{key}"] == str(value)
    assert data.params["seed"] == str(params.seed)
    assert not [key for key in data.params if key.startswith(("evaluate.", "monitor."))]  # policy makes no model
    task = params.data.task
    for metric in METRICS[task]:  # logged once, by `python -m mltemplate.registry`
        if metric.name in metrics:  # mape is left out when a target is 0
            history = client.get_metric_history(found.info.run_id, f"test_{metric.name}")
            assert [point.value for point in history] == [metrics[metric.name]]
    trained = {key: value for key, value in data.metrics.items() if key.startswith("train_")}
    assert trained
    assert all(math.isfinite(value) and value >= 0.0 for value in trained.values())
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id, "pipeline")}
    assert artifacts == {"pipeline/model.skops", "pipeline/metadata.json"}
    evaluation = {a.path for a in client.list_artifacts(found.info.run_id, "evaluation")}
    assert {f"evaluation/{plot.image.name}" for plot in plots.for_task(task)} <= evaluation
    (logged,) = client.search_logged_models(
        experiment_ids=[experiment.experiment_id], filter_string=f"source_run_id = '{found.info.run_id}'"
    )
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{logged.model_id}")
    assert info.signature is not None
    assert [c.name for c in info.signature.inputs.inputs] == metadata["schema"]["numeric"] + metadata["schema"][
        "categorical"
    ]
    assert info.saved_input_example_info is not None
    versions = client.search_model_versions(f"name = '{name}'")
    assert any(v.run_id == found.info.run_id for v in versions)


@pytest.mark.integration
def test_pipeline_run_is_logged_to_the_sqlite_default(pipeline_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pipeline_repo)
    uri = f"sqlite:///{pipeline_repo / 'mlflow.db'}"
    import mlflow

    mlflow.set_tracking_uri(uri)
    assert_run_is_complete(MlflowClient(tracking_uri=uri), pipeline_repo)


@pytest.fixture(scope="module")
def mlflow_on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` with a PostgreSQL backend store; yields its URL."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    with postgres_server() as database:
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                database,
                "--artifacts-destination",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start:\n{server.stderr.read() if server.stderr else ''}")
                time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.mark.integration
def test_pipeline_run_is_logged_to_an_mlflow_server_on_postgres(
    pipeline_repo: Path, mlflow_on_postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    run(
        ["dvc", "repro", "--force", "--single-item", "train", "evaluate"],
        cwd=repo,
        MLFLOW_TRACKING_URI=mlflow_on_postgres,
    )
    logged = run([sys.executable, "-m", "mltemplate.registry"], cwd=repo, MLFLOW_TRACKING_URI=mlflow_on_postgres)
    assert "held-out metrics logged to MLflow run" in logged.stdout
    again = run([sys.executable, "-m", "mltemplate.registry"], cwd=repo, MLFLOW_TRACKING_URI=mlflow_on_postgres)
    assert "already has the held-out metrics" in again.stdout
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_on_postgres)
    mlflow.set_tracking_uri(mlflow_on_postgres)
    assert_run_is_complete(MlflowClient(tracking_uri=mlflow_on_postgres), repo)
