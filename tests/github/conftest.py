"""The GitHub client's tests run against the same recording stand-in as the workflow harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mltemplate.github.client import Client
from tests.workflows.github_api import FakeGitHub, serving

REPOSITORY = "acme/template"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with serving(FakeGitHub(REPOSITORY)) as found:
        yield found


@pytest.fixture
def client(github: FakeGitHub) -> Client:
    return Client.from_env(
        {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPOSITORY, "GH_TOKEN": github.token("github.token")}
    )
