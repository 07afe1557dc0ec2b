"""README's promise: in a fresh clone, on a machine with only Python, git, make and node, `make run`, `make lint`
and `make test` work: an empty HOME, no uv on PATH, no system packages installed.

The clone's own `make test` is run on the unit tests and on the PostgreSQL test (the one that needed apt and
root before); the whole suite inside the suite would take as long again. The uv cache is shared with this
environment (UV_CACHE_DIR) to keep the downloads of the locked environment out of the test's time; pip, npm
and pre-commit start from the empty HOME and download from their registries.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_repo

pytestmark = [pytest.mark.integration, pytest.mark.template, pytest.mark.timeout(1800)]

# Set by uv, the venv or the caller: none of them exists on a fresh machine.
LEAKY = ("UV", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PRE_COMMIT", "MLFLOW_", "BENTOML_", "PYTEST_")


def pinned_uv_version() -> str:
    found = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert found, "Makefile has no `UV_VERSION := ...` line"
    return found.group(1)


def uv_cache_dir() -> str:
    uv = os.environ.get("UV") or str(ROOT / ".tools/uv/bin/uv")
    return subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()


def fresh_env(home: Path) -> dict[str, str]:
    """This machine's settings (network, proxies, CA bundles) with an empty HOME and a PATH of python's bin
    directory, git, make, node and /usr/bin:/bin only."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(LEAKY)}
    tools = [Path(sys.base_prefix) / "bin"]
    tools += [Path(found).parent for found in map(shutil.which, ("git", "make", "node")) if found]
    path = os.pathsep.join(dict.fromkeys(str(d) for d in [*tools, Path("/usr/bin"), Path("/bin")]))
    assert shutil.which("uv", path=path) is None, f"uv is on {path}: this test needs a PATH without it"
    env.update(HOME=str(home), PATH=path, UV_CACHE_DIR=uv_cache_dir(), DVC_NO_ANALYTICS="1")
    return env


def make(repo: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(["make", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"make {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def test_two_commands_work_in_a_fresh_clone_with_empty_home_and_no_uv(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    home = tmp_path / "home"
    home.mkdir()
    env = fresh_env(home)

    make(repo, env, "run")
    installed = subprocess.run([repo / ".tools/uv/bin/uv", "--version"], capture_output=True, text=True, check=True)
    assert installed.stdout.split()[1] == pinned_uv_version()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert changed.stdout == "", f"`make run` in a fresh clone changed committed files:\n{changed.stdout}"

    again = make(repo, env, "setup")
    assert not re.search(r"\b(sync|pip)\b", again), f"a second `make setup` installed again:\n{again}"

    make(repo, env, "lint")
    make(repo, {**env, "PYTEST_ADDOPTS": "-x -q -m 'not integration'"}, "test")
    make(repo, {**env, "PYTEST_ADDOPTS": "-x -q -k postgres tests/registry/test_runs.py"}, "test")
