"""The PR comment job's GitHub calls: post the quality-gate status `make comment` wrote, and check that the PR is
still at the commit its report built (else a newer report run will comment)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mltemplate.errors import CommandError
from mltemplate.github.client import Client
from mltemplate.github.runner import notice, set_output

SHA = re.compile(r"[0-9a-f]{40}")
STATES = {"error", "failure", "pending", "success"}
STATUS_FIELDS = {"state", "context", "description", "target_url"}


def head_sha(value: str) -> str:
    if not SHA.fullmatch(value):
        raise CommandError(f"HEAD_SHA must be a full commit sha (40 hex digits), got {value!r}")
    return value


def read_status(path: Path) -> dict[str, Any]:
    """The body of POST /repos/{repo}/statuses/{sha}, as `make comment` wrote it."""
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read the status {path}: {error}") from None
    if not isinstance(status, dict) or status.get("state") not in STATES or not set(status) <= STATUS_FIELDS:
        raise CommandError(
            f"{path}: not a commit status (state one of {sorted(STATES)}, fields {sorted(STATUS_FIELDS)})"
        )
    return status


def post_status(client: Client, sha: str, path: Path) -> None:
    status = read_status(path)
    client.request("POST", client.repo_path("statuses", head_sha(sha)), status)
    print(f"github: status {status.get('context', '')!r} = {status['state']} on {sha}")


def pr_number(path: Path) -> int:
    text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if not text.isdigit() or not 0 < int(text) < 10**9:
        raise CommandError(f"{path}: not a pull request number: {text[:20]!r}")
    return int(text)


def check_head(client: Client, number_file: Path, sha: str) -> bool:
    """Set the step output `number` when the PR is still at `sha`; a notice and no output when it moved on."""
    number = pr_number(number_file)
    pull = client.request("GET", client.repo_path("pulls", number))
    current = str(pull.get("head", {}).get("sha", ""))
    if current != head_sha(sha):
        notice(f"PR #{number} is now at {current}, not at the reported {sha}; its newer run will comment")
        return False
    set_output("number", str(number))
    return True
