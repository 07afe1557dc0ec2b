"""The workflow steps of mltemplate.github against the recording stand-in: the gate status, the PR head check,
the alert issues (open, comment, close), the GitHub Release, the environment's reviewers, the input check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.github import alerts, comment, inputs, release
from mltemplate.github.client import Client
from tests.workflows.github_api import FakeGitHub

SHA = "c" * 40
URLS = {"run": "https://github.com/acme/template/actions/runs/5", "retrain": "https://github.com/r"}
ROLLBACK = r"previous|[0-9]{4}\.[0-9]{2}\.[0-9]{2}-[0-9]{6}-[0-9a-f]{7}"


def test_the_status_make_comment_wrote_is_posted_on_the_head_commit(
    client: Client, github: FakeGitHub, tmp_path: Path
) -> None:
    status = {"state": "failure", "context": "model report / quality gate", "description": "failed: x"}
    (tmp_path / "status.json").write_text(json.dumps(status))
    comment.post_status(client, SHA, tmp_path / "status.json")
    assert github.statuses == {SHA: [status]}


@pytest.mark.parametrize("content", ['{"state": "done"}', '{"state": "success", "extra": 1}', "[]", "not json"])
def test_a_status_file_that_is_not_a_commit_status_is_refused(client: Client, tmp_path: Path, content: str) -> None:
    (tmp_path / "status.json").write_text(content)
    with pytest.raises(CommandError):
        comment.post_status(client, SHA, tmp_path / "status.json")


@pytest.mark.parametrize("sha", ["", "c" * 39, "C" * 40, "c" * 40 + "\n"])
def test_the_head_sha_must_be_a_full_commit_sha(sha: str) -> None:
    with pytest.raises(CommandError, match="HEAD_SHA must be a full commit sha"):
        comment.head_sha(sha)


def test_the_pr_number_is_output_only_while_the_pr_is_at_the_reported_commit(
    client: Client,
    github: FakeGitHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    number = github.open_pull(head="tune", sha=SHA)
    (tmp_path / "pr-number").write_text(f"{number}\n")
    assert comment.check_head(client, tmp_path / "pr-number", SHA)
    assert output.read_text() == f"number={number}\n"
    assert not comment.check_head(client, tmp_path / "pr-number", "d" * 40)
    assert output.read_text() == f"number={number}\n"
    assert f"::notice::PR #{number} is now at {SHA}" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["", "abc", "1; id", "0", "-3"])
def test_a_pr_number_file_must_hold_a_number(text: str, tmp_path: Path) -> None:
    (tmp_path / "pr-number").write_text(text)
    with pytest.raises(CommandError, match="not a pull request number"):
        comment.pr_number(tmp_path / "pr-number")


def test_alerts_open_one_issue_per_kind_then_comment_then_close(client: Client, github: FakeGitHub) -> None:
    firing = {"drift": ["drift x: ks 0.001 < 0.01"], "quality": ["quality recall: floor 0.4 < 0.8"]}
    assert alerts.update(client, firing, "summary", URLS) == ["drift: opened #1", "quality: opened #2"]
    assert [i["labels"] for i in github.issues.values()] == [["monitoring-drift"], ["monitoring-quality"]]
    assert "- drift x: ks 0.001 < 0.01" in github.issues[1]["body"]
    assert alerts.update(client, {"drift": firing["drift"], "quality": []}, "s", URLS) == [
        "drift: commented on #1",
        "quality: closed #2",
    ]
    assert github.issues[2]["state"] == "closed"
    assert github.issues[2]["comments"][-1]["body"] == f"Healthy again: {URLS['run']}"
    assert alerts.update(client, {"drift": [], "quality": []}, "s", URLS) == [
        "drift: closed #1",
        "quality: healthy, no open issue",
    ]
    assert len(github.issues) == 2


def test_an_issue_body_fits_github_s_limit_whatever_the_report(client: Client) -> None:
    text = alerts.body("drift", ["a"], "x" * 200_000, run_url="r", retrain_url="t")
    assert len(text) <= alerts.MAX_BODY
    assert text.endswith("</details>\n")


def test_alerts_json_without_alerts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "alerts.json").write_text('{"healthy": []}')
    with pytest.raises(CommandError, match="no `alerts` object"):
        alerts.read_alerts(tmp_path / "alerts.json")


def test_a_release_is_created_once_with_the_card_as_notes(client: Client, github: FakeGitHub, tmp_path: Path) -> None:
    (tmp_path / "card.md").write_text("# Model card\n")
    version = "2026.11.23-203152-667333a"
    assert release.create_release(client, version, tmp_path / "card.md", target=SHA)
    assert not release.create_release(client, version, tmp_path / "card.md", target=SHA)
    assert github.releases[version]["body"] == "# Model card\n"
    assert github.releases[version]["target_commitish"] == SHA


def test_a_forced_release_says_who_forced_it_and_why_before_the_card(
    client: Client, github: FakeGitHub, tmp_path: Path
) -> None:
    (tmp_path / "card.md").write_text("# Model card\n")
    (tmp_path / "forced.md").write_text("**Published although the gate failed**: a reason\n")
    version = "2026.11.23-203152-667333a"
    assert release.create_release(client, version, tmp_path / "card.md", target=SHA, prepend=tmp_path / "forced.md")
    assert github.releases[version]["body"] == "**Published although the gate failed**: a reason\n\n# Model card\n"
    other = "2026.11.24-203152-667333a"  # not forced: the file is absent, the notes are the card
    assert release.create_release(client, other, tmp_path / "card.md", target=SHA, prepend=tmp_path / "absent.md")
    assert github.releases[other]["body"] == "# Model card\n"


@pytest.mark.parametrize("version", ["", "latest", "2026.11.23-203152-667333a; id", "../x"])
def test_a_release_needs_a_release_version(client: Client, tmp_path: Path, version: str) -> None:
    with pytest.raises(CommandError, match="VERSION must be a release version"):
        release.create_release(client, version, tmp_path / "card.md", target=SHA)


def test_an_environment_without_required_reviewers_is_refused(client: Client, github: FakeGitHub) -> None:
    with pytest.raises(CommandError, match="cannot read the environment 'production'"):
        release.reviewers(client, "production")
    github.environments["production"] = {"protection_rules": [{"type": "wait_timer", "wait_timer": 5}]}
    with pytest.raises(CommandError, match="has no required reviewers"):
        release.reviewers(client, "production")
    github.environments["production"] = {
        "protection_rules": [{"type": "required_reviewers", "reviewers": [{"type": "Team"}, {"type": "User"}]}]
    }
    assert release.reviewers(client, "production") == 2


@pytest.mark.parametrize("value", ["previous", "2026.11.23-203152-667333a"])
def test_an_input_that_matches_its_pattern_passes(value: str) -> None:
    assert inputs.check("version", ROLLBACK, value) == value


@pytest.mark.parametrize(
    "value",
    [
        'previous"; id; "',
        "$(shell id)",
        "previous\nid",
        "previous\r",
        "2026.11.23-203152-667333a\n",
        "",
        "`id`",
        "previous ",
    ],
)
def test_a_hostile_input_is_refused_and_shown_escaped(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CommandError) as found:
        inputs.check("version", ROLLBACK, value)
    assert repr(value) in str(found.value)
    assert "\n" not in str(found.value)


def test_an_input_check_without_a_pattern_refuses_everything() -> None:
    with pytest.raises(CommandError, match="no pattern"):
        inputs.check("version", "", "previous")
