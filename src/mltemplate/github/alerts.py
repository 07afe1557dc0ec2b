"""The monitor's alert issues: one open issue per kind of alert (label monitoring-<kind>), opened on the first alert,
commented on while it recurs, closed when the monitor finds that kind healthy again."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mltemplate.errors import CommandError
from mltemplate.github.client import Client, GitHubError

KINDS = ("drift", "quality")
LABEL_COLOR = "D93F0B"
MAX_BODY = 60_000
"""GitHub takes 65536 characters per issue or comment body; the report summary is cut to fit."""


def label(kind: str) -> str:
    return f"monitoring-{kind}"


def read_alerts(path: Path) -> dict[str, list[str]]:
    """alerts.json as `make monitor` writes it: {"alerts": {kind: [line, ...]}, "healthy": [kind, ...]}."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    alerts = raw.get("alerts") if isinstance(raw, dict) else None
    if not isinstance(alerts, dict):
        raise CommandError(f"{path}: no `alerts` object")
    return {kind: [str(line) for line in alerts.get(kind) or []] for kind in KINDS}


def body(kind: str, alerts: Sequence[str], summary: str, *, run_url: str, retrain_url: str) -> str:
    lines = "\n".join(f"- {line}" for line in alerts)
    text = (
        f"The monitor raised {kind} alerts:\n\n{lines}\n\n"
        f"Report (HTML with plots): {run_url} (artifact monitoring-report)\n\n"
        f"To retrain on the labelled production records, run the Retrain workflow: {retrain_url}\n\n"
        "<details><summary>Summary</summary>\n\n"
    )
    room = MAX_BODY - len(text) - len("\n</details>\n")
    return text + (summary if len(summary) <= room else summary[: room - 20] + "\n\n(cut)") + "\n</details>\n"


def open_issue(client: Client, kind: str) -> int | None:
    found = client.request(
        "GET", client.repo_path("issues"), query={"state": "open", "labels": label(kind), "per_page": "100"}
    )
    numbers = sorted(int(issue["number"]) for issue in found if "pull_request" not in issue)
    return numbers[0] if numbers else None


def ensure_label(client: Client, kind: str) -> None:
    try:
        client.request(
            "POST",
            client.repo_path("labels"),
            {"name": label(kind), "color": LABEL_COLOR, "description": f"make monitor: {kind} alert"},
        )
    except GitHubError as error:
        if error.status != 422:  # 422: the label exists
            raise


def update(client: Client, alerts: Mapping[str, Sequence[str]], summary: str, urls: Mapping[str, str]) -> list[str]:
    """Open, comment on or close each kind's issue; returns what was done, one line per kind."""
    done = []
    for kind in KINDS:
        number = open_issue(client, kind)
        if alerts.get(kind):
            text = body(kind, alerts[kind], summary, run_url=urls["run"], retrain_url=urls["retrain"])
            if number is not None:
                client.request("POST", client.repo_path("issues", number, "comments"), {"body": text})
                done.append(f"{kind}: commented on #{number}")
            else:
                ensure_label(client, kind)
                created: dict[str, Any] = client.request(
                    "POST",
                    client.repo_path("issues"),
                    {"title": f"Monitoring: {kind} alert", "labels": [label(kind)], "body": text},
                )
                done.append(f"{kind}: opened #{created['number']}")
        elif number is not None:
            client.request(
                "POST", client.repo_path("issues", number, "comments"), {"body": f"Healthy again: {urls['run']}"}
            )
            client.request("PATCH", client.repo_path("issues", number), {"state": "closed"})
            done.append(f"{kind}: closed #{number}")
        else:
            done.append(f"{kind}: healthy, no open issue")
    return done
