"""rollback.py: which release `previous` or a named version means, and the record of a rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.release import rollback

V1, V2, V3 = "2026.01.01-000000-aaaaaaa", "2026.01.02-000000-bbbbbbb", "2026.01.03-000000-ccccccc"


@pytest.mark.parametrize(("current", "expected"), [(V3, V2), (V2, V1)])
def test_previous_is_the_newest_release_older_than_production(current: str, expected: str) -> None:
    assert rollback.choose("previous", [V1, V2, V3], current) == expected


def test_a_named_release_is_chosen_as_given() -> None:
    assert rollback.choose(V1, [V1, V2, V3], V3) == V1


def test_an_unknown_version_is_refused_with_the_known_ones() -> None:
    with pytest.raises(CommandError, match=f"unknown release '2020.01.01-000000-0000000'.*newest: {V1}, {V2}, {V3}"):
        rollback.choose("2020.01.01-000000-0000000", [V1, V2, V3], V3)


def test_previous_of_the_oldest_release_is_refused() -> None:
    with pytest.raises(CommandError, match="the oldest release: there is no previous one"):
        rollback.choose("previous", [V1, V2], V1)


def test_previous_without_a_production_release_is_refused() -> None:
    with pytest.raises(CommandError, match="no release is tagged production yet"):
        rollback.choose("previous", [V1], None)


def test_the_record_names_who_moved_what_and_when(tmp_path: Path) -> None:
    done = rollback.Deployment("rollback", "reg/app", V1, "sha256:1", V2, "3", "octocat", "2026-01-04T00:00:00+00:00")
    summary = tmp_path / "summary.md"
    rollback.record(done, {"GITHUB_STEP_SUMMARY": str(summary)}, path=tmp_path / "deployment.json")
    assert json.loads((tmp_path / "deployment.json").read_text())["actor"] == "octocat"
    assert (
        f"`reg/app:production` -> `{V1}` (`sha256:1`), was `{V2}`, MLflow champion -> version 3" in summary.read_text()
    )
    assert "by octocat at 2026-01-04T00:00:00+00:00" in summary.read_text()
