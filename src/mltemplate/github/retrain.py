"""The retrain job's GitHub part: commit the new data version and what it reproduces on a branch retrain/<run id>,
push it to origin (the token goes in an HTTP header, never in a URL or on a command line) and open its pull
request against the default branch."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from mltemplate.errors import CommandError
from mltemplate.github.client import Client
from mltemplate.github.runner import set_output

FILES = ("data.dvc", "dvc.lock", "metrics.json", "plots")
"""What a retrain changes in git: the data version and the outputs it reproduces (the data itself is in DVC)."""
TITLE = "Retrain on labelled production records"
BODY = (
    "Made by the Retrain workflow: `make retrain` appended the labelled production records to the training data "
    "(new version in data.dvc, pushed to the DVC remote) and ran the pipeline. The PR report compares the new model "
    "with the base branch."
)
BOT = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")


def branch(env: Mapping[str, str]) -> str:
    run_id = env.get("GITHUB_RUN_ID", "")
    if not run_id.isdigit():
        raise CommandError(f"GITHUB_RUN_ID must be a number, got {run_id!r}")
    return f"retrain/{run_id}"


def default_branch(env: Mapping[str, str]) -> str:
    event = env.get("GITHUB_EVENT_PATH")
    if event and Path(event).is_file():
        found = json.loads(Path(event).read_text(encoding="utf-8")).get("repository", {}).get("default_branch")
        if isinstance(found, str) and found:
            return found
    return "main"


def git(*args: str, env: Mapping[str, str] | None = None) -> None:
    result = subprocess.run(["git", *args], env=None if env is None else dict(env), capture_output=True, text=True)
    if result.returncode != 0:
        raise CommandError(f"git {args[0]} failed ({result.returncode}): {result.stderr.strip()}")


def push_env(token: str, env: Mapping[str, str]) -> dict[str, str]:
    """The environment for `git push` with the token as an HTTP Authorization header (as actions/checkout does)."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        **env,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
        "GIT_TERMINAL_PROMPT": "0",
    }


def open_pull_request(client: Client, env: Mapping[str, str] = os.environ) -> int:
    """Branch, commit, push, pull request; returns its number (also the step outputs `number` and `branch`)."""
    name = branch(env)
    changed = subprocess.run(["git", "status", "--porcelain", "--", *FILES], capture_output=True, text=True).stdout
    if not changed.strip():
        raise CommandError(f"nothing to propose: {', '.join(FILES)} are unchanged (did `make retrain` run?)")
    git("switch", "--create", name)
    git("add", "--all", "--", *[name for name in FILES if Path(name).exists()])
    git("-c", f"user.name={BOT[0]}", "-c", f"user.email={BOT[1]}", "commit", "--quiet", "-m", TITLE)
    git("push", "origin", f"HEAD:refs/heads/{name}", env=push_env(client.token, env))
    pull = client.request(
        "POST", client.repo_path("pulls"), {"title": TITLE, "head": name, "base": default_branch(env), "body": BODY}
    )
    number = int(pull["number"])
    print(f"github: opened pull request #{number} from {name}: {pull.get('html_url', '')}")
    set_output("number", str(number), env)
    set_output("branch", name, env)
    return number
