"""The report tests' fixtures: a trusted checkout's params.yaml, and a tiny git + DVC repository as a base branch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import VENV_BIN
from tests.report.samples import POLICY

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@e"]


@pytest.fixture
def trusted(tmp_path: Path) -> Path:
    """A trusted checkout's params.yaml with the policy of tests/report/samples.py (POLICY), for a binary task of
    its own: whatever task and data the repository's params.yaml chose."""
    params = {
        "name": "demo",
        "seed": 0,
        "data": {"raw": "data/raw/demo.csv", "target": "y", "positive_class": "yes"},
        "split": {"test_size": 0.25},
        "model": {"estimator": "logistic_regression"},
        "evaluate": POLICY.model_dump(mode="json"),
    }
    path = tmp_path / "trusted" / "params.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


@pytest.fixture
def dvc_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git + DVC repository whose `main` commits params.yaml, metrics.json, plots/roc.json and dvc.lock."""

    def git(*args: str) -> None:
        subprocess.run([*GIT, *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    subprocess.run([str(VENV_BIN / "dvc"), "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "params.yaml").write_text("seed: 1\nmodel:\n  C: 1.0\n")
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.9, "support": {"no": 3}}\n')
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "roc.json").write_text('{"roc": [{"fpr": 0, "tpr": 0}, {"fpr": 1, "tpr": 1}]}\n')
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  train:\n    cmd: x\n    outs:\n"
        "    - path: models/model.skops\n      md5: 0123456789abcdef0123456789abcdef\n      size: 2048\n"
    )
    git("add", "-A")
    git("commit", "-qm", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path
