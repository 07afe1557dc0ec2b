"""retrain.py: exactly the listed files are committed on the retrain branch, pushed to origin with the token in a
header, and proposed as a PR with the summary as its body."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.github import retrain
from mltemplate.github.client import Client
from tests.workflows.github_api import FakeGitHub

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> Path:
    remote, work = tmp_path / "remote.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    for name in ("data.dvc", "dvc.lock", "metrics.json", "README.md"):
        (work / name).write_text("old\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "main")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "-q", "origin", "main")
    github.remote = remote
    monkeypatch.chdir(work)
    (tmp_path / "handoff").mkdir()
    (tmp_path / "handoff" / "paths.txt").write_text("data.dvc\ndvc.lock\nmetrics.json\n")
    (tmp_path / "handoff" / "summary.md").write_text("## Retrain\n\n12 rows\n")
    return work


def test_the_retrain_files_go_to_a_branch_and_a_pull_request(
    client: Client, github: FakeGitHub, checkout: Path, tmp_path: Path
) -> None:
    for name in ("data.dvc", "dvc.lock", "metrics.json", "README.md"):
        (checkout / name).write_text("new\n")
    env = {"GITHUB_RUN_ID": "42", "GITHUB_OUTPUT": str(tmp_path / "out")}
    number = retrain.open_pull_request(client, tmp_path / "handoff", "Retrain: 12 rows", env)
    (pull,) = github.pulls()
    assert pull["pull_request"]["head"]["ref"] == "retrain/42"
    assert (pull["title"], pull["body"]) == ("Retrain: 12 rows", "## Retrain\n\n12 rows\n")
    assert (tmp_path / "out").read_text() == f"number={number}\nbranch=retrain/42\n"
    changed = git(tmp_path / "remote.git", "diff", "--name-only", "main", "retrain/42").split()
    assert changed == ["data.dvc", "dvc.lock", "metrics.json"]  # not README.md: only the listed files


def test_the_token_goes_in_a_header_not_in_the_url() -> None:
    env = retrain.push_env("s3cret", {"PATH": "/bin"})
    assert env["GIT_CONFIG_KEY_0"] == "http.extraheader"
    assert env["GIT_CONFIG_VALUE_0"] == "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46czNjcmV0"
    assert env["GIT_TERMINAL_PROMPT"] == "0"


@pytest.mark.parametrize("run_id", ["", "1; id", "$(id)", "12\n3"])
def test_a_run_id_that_is_not_a_number_pushes_nothing(
    client: Client, github: FakeGitHub, checkout: Path, run_id: str, tmp_path: Path
) -> None:
    (checkout / "data.dvc").write_text("new\n")
    with pytest.raises(CommandError, match="GITHUB_RUN_ID must be a number"):
        retrain.open_pull_request(client, tmp_path / "handoff", env={"GITHUB_RUN_ID": run_id})
    assert github.pulls() == []
    assert git(checkout, "branch", "--list") == "* main"


@pytest.mark.parametrize("paths", ["", "../outside\n", "/etc/passwd\n", "data.dvc\n-rf\n"])
def test_paths_that_are_not_plain_relative_ones_propose_nothing(
    client: Client, github: FakeGitHub, checkout: Path, tmp_path: Path, paths: str
) -> None:
    (tmp_path / "handoff" / "paths.txt").write_text(paths)
    with pytest.raises(CommandError, match=r"paths\.txt"):
        retrain.open_pull_request(client, tmp_path / "handoff", env={"GITHUB_RUN_ID": "42"})
    assert github.calls == []
