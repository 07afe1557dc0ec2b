"""A GitHub REST client on urllib: the API at GITHUB_API_URL (default https://api.github.com), the repository
GITHUB_REPOSITORY (owner/name) and the token GH_TOKEN (or GITHUB_TOKEN) from the environment."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mltemplate.errors import CommandError

DEFAULT_API = "https://api.github.com"
REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
TIMEOUT = 30.0


class GitHubError(CommandError):
    """GitHub answered with an error status: the message names the request and GitHub's own message."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"GitHub refused {method} {path}: {status} {message}")
        self.status = status


@dataclass(frozen=True)
class Client:
    """One repository of one GitHub API, with one token."""

    api_url: str
    repository: str
    token: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Client:
        repository = env.get("GITHUB_REPOSITORY", "")
        if not REPOSITORY.fullmatch(repository):
            raise CommandError(f"GITHUB_REPOSITORY must be <owner>/<name>, got {repository!r}")
        token = env.get("GH_TOKEN") or env.get("GITHUB_TOKEN") or ""
        if not token:
            raise CommandError("no token: set GH_TOKEN (the workflow passes ${{ github.token }})")
        return cls(env.get("GITHUB_API_URL") or DEFAULT_API, repository, token)

    def repo_path(self, *parts: str | int) -> str:
        """/repos/<owner>/<name>/<parts...>, each part quoted."""
        quoted = "/".join(urllib.parse.quote(str(part), safe="") for part in parts)
        return f"/repos/{self.repository}" + (f"/{quoted}" if quoted else "")

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, query: Mapping[str, str] | None = None
    ) -> Any:
        """The decoded JSON answer (None for an empty one); GitHubError for a status of 400 or more."""
        url = self.api_url.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - an http(s) API URL
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", "mltemplate-workflows")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise GitHubError(method, path, error.code, _message(error.read())) from None
        except urllib.error.URLError as error:
            raise CommandError(f"cannot reach the GitHub API at {self.api_url}: {error.reason}") from None
        return json.loads(raw) if raw.strip() else None


def _message(raw: bytes) -> str:
    try:
        found = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:200]
    return str(found.get("message", "")) if isinstance(found, dict) else str(found)[:200]
