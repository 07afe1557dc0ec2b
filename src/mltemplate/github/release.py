"""The release's GitHub calls: check that a deployment environment has required reviewers (the publishing and
rollback jobs refuse to run behind one that has none), and create the GitHub Release of a version unless it exists."""

from __future__ import annotations

import re
from pathlib import Path

from mltemplate.errors import CommandError
from mltemplate.github.client import Client, GitHubError

VERSION = re.compile(r"\d{4}\.\d{2}\.\d{2}-\d{6}-[0-9a-f]{7}")
"""A release version (mltemplate.release.publish.VERSION_PATTERN): the tag and the title of its GitHub Release."""
ENVIRONMENT = re.compile(r"[A-Za-z0-9_.-]{1,255}")
MAX_NOTES = 120_000


def reviewers(client: Client, environment: str) -> int:
    """How many required reviewers the environment has; CommandError when it has none (or does not exist)."""
    if not ENVIRONMENT.fullmatch(environment):
        raise CommandError(f"not an environment name: {environment!r}")
    try:
        found = client.request("GET", client.repo_path("environments", environment))
    except GitHubError as error:
        raise CommandError(
            f"cannot read the environment {environment!r} ({error}): create it with required reviewers "
            "(Settings > Environments) before anything is published"
        ) from None
    rules = found.get("protection_rules") or []
    count = sum(len(rule.get("reviewers") or []) for rule in rules if rule.get("type") == "required_reviewers")
    if count == 0:
        raise CommandError(
            f"the environment {environment!r} has no required reviewers: add them (Settings > Environments > "
            f"{environment} > Required reviewers); nothing is published from an environment nobody approves"
        )
    print(f"github: environment {environment!r} has {count} required reviewer(s)")
    return count


def create_release(client: Client, version: str, notes_file: Path, *, target: str, prepend: Path | None = None) -> bool:
    """Create the GitHub Release `version` (tag at `target`, notes from the model card) unless it exists; `prepend`,
    when the file exists (build/forced.md: who published past the gate, and why), goes first."""
    if not VERSION.fullmatch(version):
        raise CommandError(f"VERSION must be a release version (YYYY.MM.DD-HHMMSS-sha7), got {version!r}")
    if not re.fullmatch(r"[0-9a-f]{40}", target):
        raise CommandError(f"GITHUB_SHA must be a full commit sha, got {target!r}")
    try:
        client.request("GET", client.repo_path("releases", "tags", version))
    except GitHubError as error:
        if error.status != 404:
            raise
    else:
        print(f"github: release {version} exists; left as it is")
        return False
    notes = notes_file.read_text(encoding="utf-8")
    if prepend is not None and prepend.is_file():
        notes = prepend.read_text(encoding="utf-8") + "\n" + notes
    if len(notes) > MAX_NOTES:
        notes = notes[:MAX_NOTES] + "\n\n(cut: the full model card is in the release artifact)\n"
    created = client.request(
        "POST",
        client.repo_path("releases"),
        {"tag_name": version, "target_commitish": target, "name": version, "body": notes},
    )
    print(f"github: created release {version}: {created.get('html_url', '')}")
    return True
