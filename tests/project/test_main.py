"""`python -m mltemplate.project lane`: the lane of the changes since a base, as CI reads it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mltemplate.project.__main__ import lane


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    for name in ("params.yaml", "dvc.lock", "src/pkg/train.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("v1\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "v1")
    git(tmp_path, "checkout", "-q", "-b", "pr")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    return tmp_path


def test_a_params_and_outputs_pull_request_takes_the_project_lane_and_says_so_to_github(repo: Path) -> None:
    (repo / "params.yaml").write_text("v2\n")
    (repo / "dvc.lock").write_text("v2\n")
    git(repo, "commit", "-qam", "params")
    assert lane("main") == "project"
    assert (repo / "output").read_text() == "lane=project\n"


def test_a_code_change_takes_the_template_lane(repo: Path) -> None:
    (repo / "src/pkg/train.py").write_text("v2\n")
    git(repo, "commit", "-qam", "code")
    assert lane("main") == "template"


@pytest.mark.parametrize("base", ["", "no-such-branch"])
def test_without_a_known_base_everything_runs(repo: Path, base: str) -> None:
    (repo / "params.yaml").write_text("v2\n")
    git(repo, "commit", "-qam", "params")
    assert lane(base) == "template"
