"""Run a workflow file, unchanged, under nektos/act on this host (`-P ubuntu-latest=-self-hosted`: every step runs
here, in act's copy of the checkout), with the stand-ins of github_api.py and tests/workflows/actions, and read what
became of each job and step from act's JSON log."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, VENV_BIN
from tests.workflows.github_api import FakeGitHub, runtime_token

ACT = VENV_BIN / "act"
HERE = Path(__file__).resolve().parent
ACTIONS = HERE / "actions"
STANDINS = HERE / "standins"
PINNED = re.compile(r"uses:\s+([\w.-]+/[\w.-]+)@([0-9a-f]{40})")
STOOD_IN = {"actions/upload-artifact", "actions/download-artifact", "actions/attest-build-provenance"}
"""The actions replaced by a local folder of tests/workflows/actions (act itself replaces actions/checkout by a copy
of the repository)."""


def pinned_actions() -> dict[str, str]:
    """action -> the SHA the workflows pin it to."""
    found = {}
    for path in (ROOT / ".github" / "workflows").glob("*.yml"):
        for action, sha in PINNED.findall(path.read_text(encoding="utf-8")):
            found[action] = sha
    return found


def prepare_actions(dest: Path) -> list[str]:
    """The act --local-repository arguments: each stood-in action, as the workflows pin it, to a copy of its folder
    (act copies the folder; node_modules is an absolute link to tests/workflows/actions/node_modules)."""
    pins = pinned_actions()
    unknown = set(pins) - STOOD_IN - {"actions/checkout"}
    if unknown:
        raise AssertionError(f"no stand-in for {sorted(unknown)}: add one to tests/workflows/actions")
    args = []
    for action in sorted(STOOD_IN & set(pins)):
        folder = dest / action.split("/")[1]
        shutil.copytree(ACTIONS / action.split("/")[1], folder, dirs_exist_ok=True)
        link = folder / "node_modules"
        if not link.exists():
            link.symlink_to(ACTIONS / "node_modules")
        args += ["--local-repository", f"{action}@{pins[action]}={folder}"]
    return args


@dataclass
class Job:
    name: str
    result: str
    steps: dict[str, str] = field(default_factory=dict)
    """step name (as act names it: the step's `name`, else `Main <run or uses>`) -> success, failure, skipped."""


@dataclass
class Run:
    workflow: str
    run_id: int
    returncode: int
    seconds: float
    jobs: dict[str, Job]
    """job id -> Job; a job of a called workflow as `<caller job's name>/<job id>`; jobs act skipped are absent."""
    log: str
    leftovers: list[str] = field(default_factory=list)
    """Command lines of processes the run left alive under its folder (each killed afterwards): a job must stop
    what it starts, as a runner's end would otherwise do for it."""

    def result(self, job: str) -> str:
        return self.jobs[job].result if job in self.jobs else "skipped"

    def step(self, job: str, name: str) -> str:
        """The step's result; `skipped` for a step whose `if` was false or a job that did not run."""
        steps = self.jobs[job].steps if job in self.jobs else {}
        for key, value in steps.items():
            if key == name or key == f"Main {name}":
                return value
        return "skipped"

    def explain(self) -> str:
        results = {job: (j.result, j.steps) for job, j in self.jobs.items()}
        tail = "\n".join(self.log.splitlines()[-200:])
        return (
            f"{self.workflow} (run {self.run_id}, act exit {self.returncode}): {results}\n--- act log (end) ---\n{tail}"
        )


@dataclass
class Act:
    """act for one repository stand-in: its GitHub, where act keeps its copies, and what every run gets."""

    github: FakeGitHub
    home: Path
    actions: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Environment for every job (act --env): where the stand-ins are, on top of GITHUB_API_URL and the run ids."""
    runs: list[Run] = field(default_factory=list)

    def run(
        self,
        repo: Path,
        workflow: str,
        event: str,
        payload: Mapping[str, Any],
        *,
        holder: str = "github.token",  # who holds GITHUB_TOKEN, as the stand-in records it
        secrets: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        inputs: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        job: str | None = None,
        timeout: float = 1500,
    ) -> Run:
        run_id = self.github.new_run()
        work = self.home / f"run-{run_id}"
        work.mkdir(parents=True)
        event_file = work / "event.json"
        repository = {
            "full_name": self.github.repository,
            "name": self.github.repository.split("/")[1],
            "owner": {"login": self.github.repository.split("/")[0]},
            "default_branch": "main",
            "visibility": "public",
        }
        event_file.write_text(json.dumps({"repository": repository, **payload}))
        job_env = {
            # What a fresh runner has to itself: the Bento store, the (stand-in) image engine, registry logins.
            "BENTOML_HOME": str(work / "bentoml"),
            "DOCKER_STANDIN_HOME": str(work / "docker"),
            "REGISTRY_AUTH_FILE": str(work / "registry-auth.json"),
            **self.env,
            "GITHUB_API_URL": self.github.url,
            "GITHUB_RUN_ID": str(run_id),
            "ACTIONS_RESULTS_URL": f"{self.github.url}/",
            "ACTIONS_RUNTIME_TOKEN": runtime_token(run_id),
            **(env or {}),
        }
        args = [
            str(ACT),
            event,
            "-W",
            f".github/workflows/{workflow}",
            "-e",
            str(event_file),
            "-P",
            "ubuntu-latest=-self-hosted",
            "--action-cache-path",
            str(work / "act"),
            "--no-cache-server",
            "--concurrent-jobs",
            "1",
            "--remote-name",
            "github",
            "--actor",
            "octocat",
            "--json",
            *(["--job", job] if job else []),
            *self.actions,
            "-s",
            f"GITHUB_TOKEN={self.github.token(holder)}",
        ]
        for key, value in job_env.items():
            args += ["--env", f"{key}={value}"]
        for key, value in (secrets or {}).items():
            args += ["-s", f"{key}={value}"]
        for key, value in (variables or {}).items():
            args += ["--var", f"{key}={value}"]
        for key, value in (inputs or {}).items():
            args += ["--input", f"{key}={value}"]
        started = time.monotonic()
        done = subprocess.run(
            args, cwd=repo, env=host_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        found = Run(workflow, run_id, done.returncode, time.monotonic() - started, *parse(done.stdout + done.stderr))
        found.leftovers = stop_leftovers(work)
        (work / "act.log").write_text(found.log)
        self.runs.append(found)
        return found


def stop_leftovers(work: Path) -> list[str]:
    """Kill the processes whose command line names `work` (what the run's steps started and left running); returns
    their command lines."""
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if str(work) in command:
            found[int(proc.name)] = command
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return sorted(found.values())


def host_env() -> dict[str, str]:
    """act's own environment (self-hosted steps inherit it): the stand-in executables first on PATH, nothing of this
    test session's virtual environment, bytecode written as modules are imported."""
    # `uv run` exports VIRTUAL_ENV and UV: a job installs and uses its own, as on a runner.
    drop = {"VIRTUAL_ENV", "UV", "UV_RUN_RECURSION_DEPTH", "PYTHONDONTWRITEBYTECODE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env = {k: v for k, v in env.items() if not k.startswith(("PYTEST_", "GITHUB_", "RUNNER_", "ACTIONS_"))}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV_BIN]
    env["PATH"] = os.pathsep.join([str(STANDINS), *path])
    return env


def parse(output: str) -> tuple[dict[str, Job], str]:
    """Jobs and steps from act's JSON log lines; the log as text (messages only) for failure reports."""
    jobs: dict[str, Job] = {}
    text = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            text.append(line)
            continue
        if not isinstance(entry, dict):
            text.append(line)
            continue
        job_path = str(entry.get("job", ""))
        key = job_key(job_path, str(entry.get("jobID", "")))
        text.append(f"[{job_path}] {entry.get('msg', '')}".rstrip())
        if "jobResult" in entry:
            jobs.setdefault(key, Job(job_path, "")).result = str(entry["jobResult"])
        if "stepResult" in entry and entry.get("stage") == "Main":
            jobs.setdefault(key, Job(job_path, "")).steps[str(entry.get("step", ""))] = str(entry["stepResult"])
    return jobs, "\n".join(text)


def job_key(job_path: str, job_id: str) -> str:
    """`publish` for a job of the workflow itself, `CI/lint` for job `lint` of the workflow the job named CI calls."""
    parts = job_path.split("/")
    return f"{parts[0]}/{job_id}" if len(parts) > 2 else job_id
