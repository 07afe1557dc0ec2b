"""Fixtures of the monitoring tests: a repository copy with a trained model, its held-out records, and a database
(SQLite file or a real PostgreSQL) for the prediction log."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mltemplate.model_metadata import read_model_metadata
from tests.conftest import run
from tests.postgres import cluster
from tests.service_client import json_records


@pytest.fixture(scope="module")
def repo(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("monitoring") / "repo"
    # Not the top-level monitoring/ (a log other tests' services wrote there); src/mltemplate/monitoring stays.
    shutil.copytree(
        pipeline_repo, copy, symlinks=True, ignore=lambda d, _: ["monitoring"] if d == str(pipeline_repo) else []
    )
    run([sys.executable, "-m", "mltemplate.release.provenance", "write"], cwd=copy)
    return copy


@pytest.fixture(scope="module")
def records(repo: Path) -> list[dict[str, Any]]:
    features = list(read_model_metadata(repo / "models/metadata.json").input_schema.features)
    return json_records(pd.read_csv(repo / "data/prepared/test.csv")[features])


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
    else:
        with cluster("monitoring") as found:
            yield found.url
