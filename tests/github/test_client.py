"""client.py: the REST client against the recording stand-in: what it sends, and what it says when GitHub refuses."""

from __future__ import annotations

import pytest

from mltemplate.errors import CommandError
from mltemplate.github.client import Client, GitHubError
from tests.workflows.github_api import FakeGitHub


def test_requests_carry_the_token_and_a_json_body(client: Client, github: FakeGitHub) -> None:
    client.request("POST", client.repo_path("statuses", "a" * 40), {"state": "success", "context": "c"})
    (call,) = github.calls
    assert (call.method, call.path, call.body, call.holder) == (
        "POST",
        f"/repos/acme/template/statuses/{'a' * 40}",
        {"state": "success", "context": "c"},
        "github.token",
    )


def test_a_refusal_names_the_request_and_github_s_message(client: Client) -> None:
    with pytest.raises(GitHubError, match=r"GitHub refused GET /repos/acme/template/pulls/9: 404 Not Found") as found:
        client.request("GET", client.repo_path("pulls", 9))
    assert found.value.status == 404


def test_an_unknown_token_is_refused(github: FakeGitHub) -> None:
    client = Client(github.url, "acme/template", "not-a-token")
    with pytest.raises(GitHubError, match="401 Bad credentials"):
        client.request("GET", client.repo_path("pulls", 1))


def test_path_parts_are_quoted(client: Client) -> None:
    assert client.repo_path("releases", "tags", "a/b c") == "/repos/acme/template/releases/tags/a%2Fb%20c"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITHUB_REPOSITORY": "acme", "GH_TOKEN": "t"}, "GITHUB_REPOSITORY must be <owner>/<name>"),
        ({"GITHUB_REPOSITORY": "acme/x/../y", "GH_TOKEN": "t"}, "GITHUB_REPOSITORY must be <owner>/<name>"),
        ({"GITHUB_REPOSITORY": "acme/template"}, "no token"),
    ],
)
def test_the_environment_must_name_the_repository_and_a_token(env: dict[str, str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        Client.from_env(env)


def test_the_api_url_defaults_to_github_and_a_dead_one_says_so() -> None:
    assert Client.from_env({"GITHUB_REPOSITORY": "a/b", "GITHUB_TOKEN": "t"}).api_url == "https://api.github.com"
    client = Client("http://127.0.0.1:9", "a/b", "t")
    with pytest.raises(CommandError, match=r"cannot reach the GitHub API at http://127\.0\.0\.1:9"):
        client.request("GET", "/repos/a/b")
