"""Release provenance: the release of the model at HEAD, with or without an MLflow run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from mltemplate import estimators
from mltemplate.errors import CommandError
from mltemplate.identity import model_key
from mltemplate.model import TrainedModel, load
from mltemplate.params import Params
from mltemplate.registry.runs import MODEL_MD5_TAG
from mltemplate.release import provenance
from mltemplate.schema import Schema
from tests.conftest import save_model, trained_model


def git_repo(path: Path, when: str = "2024-01-02T03:04:05+00:00") -> str:
    """An empty commit at `when` in a new repository at `path`; returns its sha."""
    env = {"GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when, "PATH": "/usr/bin:/bin"}
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(args, cwd=path, env=env, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def trained(tmp_path: Path, mixed_frame: pd.DataFrame) -> TrainedModel:
    """A small model saved as the pipeline does, loaded back."""
    schema = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")
    pipeline = estimators.build_pipeline(
        numeric=schema.numeric,
        categorical=schema.categorical,
        estimator=estimators.make_estimator("logistic_regression", {}),
    )
    pipeline.fit(mixed_frame[list(schema.features)], mixed_frame["outcome"])
    paths = {"model_path": tmp_path / "models/model.skops", "metadata_path": tmp_path / "models/metadata.json"}
    save_model(trained_model(pipeline, schema), **paths)
    return load(**paths)


def test_collect_without_mlflow_run_uses_the_commit_time(
    tmp_path: Path, trained: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = git_repo(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'absent.db'}")
    found = provenance.collect(tmp_path, experiment="demo", trained=trained)
    assert (found.version, found.mlflow_run_id, found.trained_at) == (
        f"2024.01.02-030405-{sha[:7]}",
        None,
        "2024-01-02T03:04:05+00:00",
    )
    assert found.git_commit.startswith(sha)
    assert (found.model_md5, found.data_md5) == (trained.metadata.model_md5, trained.metadata.data.md5)
    assert not (tmp_path / "absent.db").exists()


def test_collect_outside_git_says_so(tmp_path: Path, trained: TrainedModel) -> None:
    with pytest.raises(CommandError, match="no git commit to version from"):
        provenance.collect(tmp_path, experiment="demo", trained=trained)


def test_collect_keys_the_release_and_names_the_registered_version(
    tmp_path: Path, trained: TrainedModel, params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    git_repo(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    run = client.create_run(client.create_experiment("demo"), tags={MODEL_MD5_TAG: trained.metadata.model_md5})
    client.create_registered_model("demo")
    registered = client.create_model_version("demo", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    found = provenance.collect(tmp_path, experiment="demo", trained=trained, params=params)
    assert found.registry_version == str(registered.version)
    assert found.model_key == model_key(trained.metadata.model_md5, trained.metadata.data.md5, params)
