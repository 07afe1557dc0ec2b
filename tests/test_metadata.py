"""The typed readers of metadata.json and release.json, and the release version."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.metadata import (
    MetadataError,
    ModelMetadata,
    Release,
    current_release,
    head_version,
    read_model_metadata,
)
from mltemplate.schema import Schema
from tests.conftest import DESCRIPTION
from tests.release.test_provenance import git_repo

SCHEMA = Schema(numeric=("age",), categorical=("site",), target="outcome", positive_class="sick")


def _metadata(**changes: object) -> ModelMetadata:
    raw = {**DESCRIPTION, "schema": SCHEMA, "classes": ["sick", "well"], "model_md5": "m" * 32}
    return ModelMetadata.model_validate({**raw, **changes})


def _release(**changes: str) -> Release:
    raw = {
        "version": "v1",
        "git_commit": "abc",
        "model_md5": "m" * 32,
        "data_md5": "d" * 32,
        "mlflow_run_id": None,
        "trained_at": "2024-01-01T00:00:00+00:00",
        "built_at": "2024-01-02T00:00:00+00:00",
    }
    return Release.model_validate({**raw, **changes})


def test_metadata_round_trips_through_its_json(tmp_path: Path) -> None:
    path = tmp_path / "metadata.json"
    path.write_text(_metadata().to_json())
    assert read_model_metadata(path) == _metadata()
    assert json.loads(path.read_text())["schema"]["categorical"] == ["site"]


def test_metadata_without_a_model_says_run_make_run(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="run `make run` first"):
        read_model_metadata(tmp_path / "models" / "metadata.json")


def test_metadata_with_an_unknown_field_names_it(tmp_path: Path) -> None:
    raw = json.loads(_metadata().to_json())
    (tmp_path / "m.json").write_text(json.dumps({**raw, "colour": "red"}))
    with pytest.raises(MetadataError, match="colour"):
        read_model_metadata(tmp_path / "m.json")


def test_version_is_utc_commit_time_and_short_sha(tmp_path: Path) -> None:
    sha = git_repo(tmp_path, when="2024-01-02T05:04:05+02:00")
    assert head_version(tmp_path) == f"2024.01.02-030405-{sha[:7]}"


def test_version_is_a_valid_docker_tag(tmp_path: Path) -> None:
    git_repo(tmp_path)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", head_version(tmp_path))


def test_version_outside_git_says_so(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no git commit to version from"):
        head_version(tmp_path)


def test_current_release_reads_release_json_outside_git(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    path.write_text(_release().to_json())
    assert current_release(_metadata(), path=path, repo=tmp_path) == _release()


def test_current_release_reads_release_json_written_at_head(tmp_path: Path) -> None:
    git_repo(tmp_path)
    written = _release(version=head_version(tmp_path))
    path = tmp_path / "release.json"
    path.write_text(written.to_json())
    assert current_release(_metadata(), path=path, repo=tmp_path) == written


@pytest.mark.parametrize(
    "stale", [{"model_md5": "0" * 32}, {"version": "2000.01.01-000000-0000000"}], ids=["other model", "older commit"]
)
def test_current_release_describes_head_when_release_json_is_stale(tmp_path: Path, stale: dict[str, str]) -> None:
    sha = git_repo(tmp_path)
    path = tmp_path / "release.json"
    path.write_text(_release(**stale).to_json())
    found = current_release(_metadata(), path=path, repo=tmp_path)
    assert (found.version, found.model_md5, found.mlflow_run_id) == (head_version(tmp_path), "m" * 32, None)
    assert found.git_commit.startswith(sha)
