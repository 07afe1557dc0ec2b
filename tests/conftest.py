"""Shared fixtures: tiny in-memory data for unit tests, and real repository copies for integration tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mltemplate.dvcfiles import parse_tracked
from mltemplate.estimators import ESTIMATORS
from mltemplate.model import TrainedModel, save
from mltemplate.model_metadata import ModelMetadata
from mltemplate.params import Params, load_params
from mltemplate.report.loadtest import Server, serving
from mltemplate.schema import Schema

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

pytest_plugins = ["tests.job_summary"]  # test counts in the GitHub Actions job summary (ci.yml)
PROJECT_FIXTURES = frozenset({"params"})
"""Fixtures that read this project's own files: a test using one is in the fast lane (marker `project`)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROJECT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.project)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: this venv's tools first on PATH, no analytics."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    # The pinned uv (`uv run` already exports it): a make in a copy of the repository, which has no .tools/,
    # calls this checkout's uv.
    env.setdefault("UV", str(ROOT / ".tools/uv/bin/uv"))
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure the assertion shows its output."""
    result = subprocess.run(args, cwd=cwd, env=subprocess_env(**extra_env), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def push_to_local_dvc_remote(repo: Path, remote: Path, *targets: str) -> None:
    """Make `remote` (a local directory) `repo`'s default DVC remote, in .dvc/config for the caller to commit, and
    push `targets` (all that the DVC files track when none): what a project's fresh CI checkout pulls, as its own
    CSV has no bundled copy."""
    for args in (("remote", "add", "--default", "--force", "ci", str(remote)), ("push", "--quiet", *targets)):
        run([sys.executable, "-m", "dvc", *args], cwd=repo)


def tracked_data(root: Path = ROOT) -> list[Path]:
    """The files the repository's .dvc files track that are here (the team's CSV, which git ignores and no remote
    may provide to a test's copy), relative to `root`."""
    found = []
    for dvc_file in sorted(path for path in root.glob("*.dvc") if path.is_file()):
        tracked = parse_tracked(dvc_file.read_bytes())
        if tracked is not None and (root / tracked.path).is_file():
            found.append(tracked.path)
    return found


def copy_repo(dest: Path) -> Path:
    """Copy the working tree (tracked and unignored files, as they are now, and the data the .dvc files track) into
    a fresh git repo at `dest`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in [*filter(None, listed), *(path.as_posix() for path in tracked_data())]:
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "copy"],
    ):
        subprocess.run(args, cwd=dest, check=True, capture_output=True)
    return dest


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository where `make run`'s steps (data, `dvc repro`, tracking) have run, with MLflow
    in a SQLite file there.
    Shared by the session: tests must not change it; copy it when they need to."""
    repo = copy_repo(tmp_path_factory.mktemp("pipeline") / "repo")
    run([sys.executable, "-m", "mltemplate.pipeline.data"], cwd=repo)
    run(["dvc", "repro"], cwd=repo)
    run([sys.executable, "-m", "mltemplate.registry"], cwd=repo)
    return repo


@pytest.fixture(scope="module")
def start_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """`start_service(repo, SERVE_WORKERS="1", ...)` starts a real `bentoml serve` of `repo` with those variables
    (loadtest.serving: its URL, process group and kept log); every server a module started stops after the module.
    The prediction log, its spool and BENTOML_HOME go to a directory of their own unless the variables say
    otherwise, so servers never share them nor write into `repo`."""
    with ExitStack() as stack:

        def start(repo: Path, **env: str) -> Server:
            scratch = tmp_path_factory.mktemp("service")
            defaults = {
                "MONITORING_DB_URL": f"sqlite:///{scratch / 'monitoring' / 'predictions.db'}",
                "MONITORING_SPOOL_DIR": str(scratch / "monitoring" / "spool"),
                "BENTOML_HOME": str(scratch / "bentoml"),
            }
            return stack.enter_context(serving(repo, env={**defaults, **env}, log=scratch / "serve.log"))

        yield start


@pytest.fixture
def params() -> Params:
    return load_params(ROOT / "params.yaml")


@pytest.fixture
def chdir_tmp(tmp_path: Path) -> Iterator[Path]:
    """Run the test inside tmp_path, where stages write their relative outputs."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    """Small data with a categorical column, missing values and text labels."""
    rng = np.random.default_rng(0)
    n = 80
    age = rng.normal(50, 10, n).round(1)
    dose = rng.normal(5, 2, n).round(2)
    site = rng.choice(["north", "south", "east"], n)
    label = np.where(age + 5 * (site == "north") + rng.normal(0, 5, n) > 52, "sick", "well")
    frame = pd.DataFrame({"age": age, "dose": dose, "site": site, "outcome": label})
    frame.loc[[3, 10], "dose"] = np.nan
    frame.loc[[5], "site"] = np.nan
    return frame


DESCRIPTION: dict[str, Any] = {
    "name": "demo",
    "estimator": "logistic_regression",
    "hyperparameters": {},
    "seed": 0,
    "data": {"path": "data/raw/demo.csv", "md5": "d" * 32, "train_rows": 0},
    "libraries": {},
    "nullable": [],
    "categories": {},
}
"""What the train stage records about a model, for models the tests fit themselves."""


def trained_model(pipeline: Any, schema: Schema, **overrides: Any) -> TrainedModel:
    """A fitted pipeline with metadata as the train stage would write it (model_md5 made up)."""
    raw = {
        **DESCRIPTION,
        "schema": schema,
        "classes": [str(c) for c in getattr(pipeline, "classes_", [])],
        "model_md5": "0" * 32,
    }
    return TrainedModel(pipeline=pipeline, metadata=ModelMetadata.model_validate({**raw, **overrides}))


def save_model(trained: TrainedModel, *, model_path: Path, metadata_path: Path, **overrides: Any) -> ModelMetadata:
    """Save as the train stage does: the archive and metadata.json (with its md5) side by side."""
    return save(
        trained.pipeline,
        trained.schema,
        {**DESCRIPTION, **overrides},
        model_path=model_path,
        metadata_path=metadata_path,
    )


def nudged_hyperparameter(params: Params) -> tuple[str, Any]:
    """`model.hyperparameters.<estimator>.<name>` and a new value for the estimator params.yaml has chosen: the
    nudge of its entry in the estimator registry."""
    estimator = params.model.estimator
    nudge = ESTIMATORS[estimator].nudge
    if nudge is None:
        pytest.skip(f"no known hyperparameter to change for estimator {estimator!r}: add a nudge to its entry")
    name, change = nudge
    return f"model.hyperparameters.{estimator}.{name}", change(params.model.selected.get(name))
