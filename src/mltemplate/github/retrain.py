"""The retrain workflow's GitHub part: commit exactly the files `make check-retrain-paths` listed
(build/retrain/paths.txt: the new data version and what it reproduces) on a branch retrain/<run id>, push it to
origin (the token goes in an HTTP header, never in a URL or on a command line) and open its pull request against the
default branch, with the retrain's summary (build/retrain/summary.md) as its body."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from mltemplate.errors import CommandError
from mltemplate.github.client import Client
from mltemplate.github.runner import set_output

PATHS, SUMMARY = "paths.txt", "summary.md"
TITLE = "Retrain on labelled production records"
MAX_BODY = 60_000
PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
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


def listed(handoff: Path) -> list[str]:
    """The paths `make check-retrain-paths` listed: relative, inside the checkout, one per line."""
    found = (handoff / PATHS).read_text(encoding="utf-8").splitlines() if (handoff / PATHS).is_file() else []
    bad = [p for p in found if not PATH.fullmatch(p) or ".." in Path(p).parts]
    if bad or not found:
        raise CommandError(f"{handoff / PATHS}: no paths, or paths that are not plain relative ones: {bad[:3]}")
    return found


def open_pull_request(client: Client, handoff: Path, title: str = TITLE, env: Mapping[str, str] = os.environ) -> int:
    """Branch, commit the listed paths, push, pull request; returns its number (also the outputs `number`, `branch`)."""
    name = branch(env)
    paths = listed(handoff)
    summary = handoff / SUMMARY
    body = summary.read_text(encoding="utf-8")[:MAX_BODY] if summary.is_file() else TITLE
    title = " ".join(title.split())[:200] or TITLE
    git("switch", "--create", name)
    git("add", "--all", "--", *paths)
    git("-c", f"user.name={BOT[0]}", "-c", f"user.email={BOT[1]}", "commit", "--quiet", "-m", title)
    git("push", "origin", f"HEAD:refs/heads/{name}", env=push_env(client.token, env))
    pull = client.request(
        "POST", client.repo_path("pulls"), {"title": title, "head": name, "base": default_branch(env), "body": body}
    )
    number = int(pull["number"])
    print(f"github: opened pull request #{number} from {name}: {pull.get('html_url', '')}")
    set_output("number", str(number), env)
    set_output("branch", name, env)
    return number
