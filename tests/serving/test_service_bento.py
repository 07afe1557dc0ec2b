"""`make bento` on a pipeline copy: the Bento holds the exact model dvc.lock records and its release file, and
its generated Dockerfile passes hadolint and runs the service as a non-root user."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mltemplate import dvcfiles
from mltemplate.identity import head_version
from mltemplate.model import md5, verify
from mltemplate.release import requirements
from mltemplate.report.loadtest import served
from tests.conftest import ROOT, VENV_BIN, run
from tests.service_client import request

pytestmark = pytest.mark.integration

# Findings in BentoML's own Dockerfile template (not ours to change; bentoml's image build is what users run).
# Any other finding fails the test, e.g. one that a docker: option in bentofile.yaml would introduce.
HADOLINT_IGNORED = {
    "DL3008": "apt packages unpinned in BentoML's base block (the python:3.11-slim base is pinned by tag)",
    "DL3009": "BentoML's base block keeps apt lists",
    "DL3013": "`pip install uv` unpinned in BentoML's template; Python packages come pinned from uv.lock",
    "DL3042": "pip cache in BentoML's template",
    "DL3046": "useradd without -l in BentoML's template",
    "DL3066": "USER bentoml is a name; it is created with a fixed UID 1034 in the same file",
    "SC3020": "`&>` in BentoML's useradd line runs under /bin/sh as a harmless redirection",
}


@pytest.fixture(scope="module")
def bento(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make bento` in a copy of the pipeline repo, with the Bento store in tmp; returns the Bento's directory."""
    repo = Path(shutil.copytree(pipeline_repo, tmp_path_factory.mktemp("bento") / "repo", symlinks=True))
    home = repo.parent / "bentoml-home"
    # The copy reuses this checkout's environment (make would otherwise create a new .venv in the copy).
    run(
        ["make", "-o", "setup", "-o", ".venv/.synced", "bento"],
        cwd=repo,
        BENTOML_HOME=str(home),
        UV_PROJECT_ENVIRONMENT=str(VENV_BIN.parent),
        PYTHONPATH=str(repo / "src"),
    )
    tag = f"{json.loads((repo / 'models/metadata.json').read_text())['name']}/{head_version(repo)}"
    path = home / "bentos" / tag
    assert path.is_dir(), f"no Bento at {path}: {sorted(p.name for p in (home / 'bentos').rglob('*'))[:20]}"
    return path


def test_bento_is_named_and_versioned_by_release(bento: Path, pipeline_repo: Path) -> None:
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    name = json.loads((pipeline_repo / "models/metadata.json").read_text())["name"]
    assert (info["name"], info["version"]) == (name, head_version(pipeline_repo))
    assert info["service"] == "mltemplate.serving.service:PredictionService"


def test_bento_holds_the_model_dvc_lock_records(bento: Path, pipeline_repo: Path) -> None:
    src = bento / "src"
    locked = dvcfiles.locked_md5(pipeline_repo / "models/model.skops", lock=pipeline_repo / "dvc.lock")
    assert md5(src / "models/model.skops") == locked
    assert (
        verify(model_path=src / "models/model.skops", metadata_path=src / "models/metadata.json", lock=src / "dvc.lock")
        == locked
    )
    shipped = json.loads((src / "models/release.json").read_text())
    assert (shipped["model_md5"], shipped["version"]) == (locked, head_version(pipeline_repo))


def test_bento_holds_only_what_the_service_reads(bento: Path) -> None:
    files = {p.relative_to(bento / "src").as_posix() for p in (bento / "src").rglob("*") if p.is_file()}
    assert {"src/mltemplate/serving/service.py", "metrics.json", "dvc.lock", "examples/predict.json"} <= files
    assert not {f for f in files if f.startswith(("data/", "mlruns/", "tests/", ".git/")) or f.endswith(".db")}
    assert "params.yaml" not in files  # the service reads what the model's own files record, not the params now


def test_dockerfile_passes_hadolint(bento: Path) -> None:
    ignores = [arg for rule in HADOLINT_IGNORED for arg in ("--ignore", rule)]
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or str(ROOT / ".venv/bin/hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", *ignores, str(bento / "env/docker/Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_runs_as_a_non_root_user(bento: Path) -> None:
    lines = [line.strip() for line in (bento / "env/docker/Dockerfile").read_text().splitlines()]
    stage = lines[max(i for i, line in enumerate(lines) if line.upper().startswith("FROM ")) :]
    users = [line.split()[1] for line in stage if line.upper().startswith("USER ")]
    assert users, "the final stage sets no USER: the container would run as root"
    assert users[-1] not in {"root", "0", "0:0"}
    after_user = stage[max(i for i, line in enumerate(stage) if line.upper().startswith("USER ")) :]
    assert any(line.upper().startswith("ENTRYPOINT") for line in after_user)
    entrypoint = (bento / "env/docker/entrypoint.sh").read_text()
    assert not re.search(r"\b(su|sudo|gosu|su-exec)\b", entrypoint)


def test_bento_serves_its_release_without_git_or_the_repo(bento: Path, pipeline_repo: Path) -> None:
    """As in the container: cwd is the Bento's src/, the package comes from src/src, no .git, no pipeline files."""
    assert not (bento / "src/.git").exists()
    example = (pipeline_repo / "examples/predict.json").read_bytes()
    with served(bento / "src", env={"SERVE_WORKERS": "1"}) as url:
        answer = request(url, "/predict", body=example, headers={"Content-Type": "application/json"})
        meta = request(url, "/metadata", method="GET").json()
    assert answer.status == 200, answer.text
    assert answer.json()["model_version"] == meta["version"] == head_version(pipeline_repo)
    written = json.loads((bento / "src/models/release.json").read_text())
    assert meta["mlflow_run_id"] == written["mlflow_run_id"]
    assert (meta["registry_version"], meta["model_key"]) == (written["registry_version"], written["model_key"])
    assert meta["model_key"]  # `make bento` keys the release by the model, its data and params


def test_bento_installs_only_hashed_requirements(bento: Path) -> None:
    text = (bento / "env/python/requirements.txt").read_text()
    wanted = [e for e in requirements.entries(text) if e.strip() and not e.lstrip().startswith(("#", "-"))]
    assert wanted
    assert [e.splitlines()[0] for e in wanted if "--hash=sha256:" not in e] == []
    assert any(re.match(r"bentoml ?@ ?https://", e) for e in wanted)  # else bentoml build appends an unhashed pin
    dockerfile = (bento / "env/docker/Dockerfile").read_text()
    assert dockerfile.index("UV_REQUIRE_HASHES") < dockerfile.index("pip install -r")
