"""`make retrain` on a copy of the repository: labelled production records are appended to the tracked CSV
(data.dvc follows), the pipeline runs on the new version, and a second retrain adds nothing twice."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mltemplate.lock import locked_md5
from mltemplate.metadata import read_model_metadata
from mltemplate.model import md5
from mltemplate.monitoring import retrain as retrain_module
from mltemplate.monitoring import store
from tests.conftest import subprocess_env

pytestmark = pytest.mark.integration

LABELLED = 12


def retrain(repo: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltemplate.monitoring", "retrain"],
        cwd=repo,
        env=subprocess_env(MONITORING_DB_URL=url),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_labelled_records_become_a_new_data_version_and_the_pipeline_runs(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    metadata = read_model_metadata(repo / "models/metadata.json")
    schema = metadata.input_schema
    raw = Path(yaml.safe_load((repo / "params.yaml").read_text())["data"]["raw"])
    before = pd.read_csv(repo / raw)
    held_out = pd.read_csv(repo / "data/prepared/test.csv").head(LABELLED)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    db = store.open_store(url)
    with db.begin() as connection:
        store.write_predictions(
            connection,
            [
                {
                    "request_id": f"r{i}",
                    "position": 0,
                    "ts": time.time(),
                    "model_version": "v",
                    "features": {name: row[name] for name in schema.features},
                    "label": metadata.classes[0],
                    "probabilities": {},
                }
                for i, row in held_out.iterrows()
            ],
        )
        connection.execute(
            store.feedback.insert(),
            [
                {"request_id": f"r{i}", "position": 0, "label": str(row[schema.target]), "ts": time.time()}
                for i, row in held_out.iterrows()
            ],
        )
    old_lock = (repo / "dvc.lock").read_text()

    result = retrain(repo, url)
    assert result.returncode == 0, result.stdout + result.stderr
    after = pd.read_csv(repo / raw)
    assert len(after) == len(before) + LABELLED
    pd.testing.assert_frame_equal(
        after.tail(LABELLED).reset_index(drop=True)[list(held_out.columns)],
        held_out.reset_index(drop=True),
        check_dtype=False,
    )
    tracked = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]
    assert tracked["md5"] == md5(repo / raw)
    assert (repo / "dvc.lock").read_text() != old_lock
    assert locked_md5(raw, lock=repo / "dvc.lock") in (None, tracked["md5"])

    listed = json.loads((repo / "monitoring" / "retrain.json").read_text())["records"]
    assert sorted(listed) == sorted([f"r{i}", 0] for i in held_out.index)
    used = subprocess.run(
        [sys.executable, "-m", "mltemplate.monitoring", "retrain-used"],
        cwd=repo,
        env=subprocess_env(MONITORING_DB_URL=url),
        capture_output=True,
        text=True,
    )
    assert used.returncode == 0, used.stderr
    assert f"marked {LABELLED} record(s) used" in used.stdout
    again = retrain(repo, url)
    assert again.returncode == 1
    assert "no labelled production records" in again.stderr
    assert len(pd.read_csv(repo / raw)) == len(after)


def test_appended_records_stay_pending_until_retrain_used(pipeline_repo: Path, tmp_path: Path) -> None:
    # A run whose push or pull request failed never ran `make retrain-used`: the next run finds the records again.
    repo = tmp_path / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    metadata = read_model_metadata(repo / "models/metadata.json")
    held_out = pd.read_csv(repo / "data/prepared/test.csv").head(3)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    db = store.open_store(url)
    with db.begin() as connection:
        store.write_predictions(
            connection,
            [
                {
                    "request_id": f"p{i}",
                    "position": 0,
                    "ts": time.time(),
                    "model_version": "v",
                    "features": {name: row[name] for name in metadata.input_schema.features},
                    "label": metadata.classes[0],
                    "probabilities": {},
                }
                for i, row in held_out.iterrows()
            ],
        )
        connection.execute(
            store.feedback.insert(),
            [
                {"request_id": f"p{i}", "position": 0, "label": metadata.classes[1], "ts": time.time()}
                for i in held_out.index
            ],
        )
    appended = subprocess.run(
        [sys.executable, "-m", "mltemplate.monitoring", "retrain", "--no-pipeline"],
        cwd=repo,
        env=subprocess_env(MONITORING_DB_URL=url),
        capture_output=True,
        text=True,
    )
    assert appended.returncode == 0, appended.stderr
    assert len(retrain_module.labelled_records(db)) == 3
