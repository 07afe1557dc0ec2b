"""Release version and provenance: derived from HEAD, checked against dvc.lock, read back from release.json."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mltemplate import estimators, release
from mltemplate import model as model_files
from mltemplate.cli import CommandError
from mltemplate.schema import Schema


def _git_repo(path: Path, when: str = "2024-01-02T03:04:05+00:00") -> str:
    env = {"GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when, "PATH": "/usr/bin:/bin"}
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(args, cwd=path, env=env, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def test_version_is_utc_commit_time_and_short_sha(tmp_path: Path) -> None:
    sha = _git_repo(tmp_path, when="2024-01-02T05:04:05+02:00")
    assert release.version(tmp_path) == f"2024.01.02-030405-{sha[:7]}"


def test_version_is_a_valid_docker_tag(tmp_path: Path) -> None:
    _git_repo(tmp_path)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", release.version(tmp_path))


def test_version_outside_git_says_so(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no git commit to version from"):
        release.version(tmp_path)


@pytest.fixture
def saved(tmp_path: Path, mixed_frame: pd.DataFrame) -> tuple[Path, Path]:
    """A small trained model saved as the pipeline does, with a dvc.lock that records it."""
    schema = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")
    pipeline = estimators.build_pipeline(
        numeric=schema.numeric,
        categorical=schema.categorical,
        estimator=estimators.make_estimator("logistic_regression", {}),
    )
    pipeline.fit(mixed_frame[list(schema.features)], mixed_frame["outcome"])
    model_path, metadata_path = tmp_path / "models/model.skops", tmp_path / "models/metadata.json"
    metadata = {"name": "demo", "data": {"md5": "d" * 32}}
    model_files.save(
        model_files.TrainedModel(pipeline, schema, metadata), model_path=model_path, metadata_path=metadata_path
    )
    digest = hashlib.md5(model_path.read_bytes(), usedforsecurity=False).hexdigest()
    lock = {"schema": "2.0", "stages": {"train": {"outs": [{"path": "models/model.skops", "md5": digest}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    return model_path, metadata_path


def _check(tmp_path: Path, saved: tuple[Path, Path]) -> model_files.TrainedModel:
    return release.check_model(model_path=saved[0], metadata_path=saved[1], lock=tmp_path / "dvc.lock")


def test_check_model_accepts_the_file_dvc_lock_records(tmp_path: Path, saved: tuple[Path, Path]) -> None:
    assert _check(tmp_path, saved).metadata["name"] == "demo"


def test_check_model_refuses_a_model_dvc_lock_does_not_record(tmp_path: Path, saved: tuple[Path, Path]) -> None:
    lock = tmp_path / "dvc.lock"
    lock.write_text(re.sub(r"md5: \w+", "md5: " + "f" * 32, lock.read_text()))
    with pytest.raises(
        model_files.ModelError, match=r"is not the model .*dvc.lock records \(md5 f{32}\): run `make run`"
    ):
        _check(tmp_path, saved)


def test_check_model_without_dvc_lock_says_run_make_run(tmp_path: Path, saved: tuple[Path, Path]) -> None:
    (tmp_path / "dvc.lock").unlink()
    with pytest.raises(model_files.ModelError, match=r"no .*dvc\.lock: run `make run` first"):
        _check(tmp_path, saved)


def test_dvc_lock_without_the_model_entry_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "dvc.lock"
    lock.write_text(yaml.safe_dump({"stages": {"train": {"outs": [{"path": "other", "md5": "x"}]}}}))
    with pytest.raises(model_files.ModelError, match=r"records no md5 for models/model\.skops"):
        release.locked_model_md5(lock)


def test_check_model_without_model_says_run_make_run(tmp_path: Path) -> None:
    with pytest.raises(model_files.ModelError, match="run `make run` first"):
        release.check_model(model_path=tmp_path / "m.skops", metadata_path=tmp_path / "m.json", lock=tmp_path / "l")


def _release(**changes: str) -> release.Release:
    base = release.Release(
        "v1", "abc", "m" * 32, "d" * 32, None, "2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"
    )
    return dataclasses.replace(base, **changes)


def test_current_reads_release_json_that_describes_the_model_outside_git(
    tmp_path: Path, saved: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no git here, as in a Bento
    trained = _check(tmp_path, saved)
    written = _release(model_md5=trained.metadata["model_md5"])
    path = tmp_path / "release.json"
    path.write_text(json.dumps(written.to_dict()))
    monkeypatch.setattr(release, "collect", pytest.fail)
    assert release.current(trained, experiment="demo", path=path) == written


def test_current_recomputes_when_release_json_is_stale(
    tmp_path: Path, saved: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = _check(tmp_path, saved)
    path = tmp_path / "release.json"
    path.write_text(json.dumps(_release(model_md5="0" * 32).to_dict()))
    fresh = _release(version="v2")
    monkeypatch.setattr(release, "collect", lambda repo, *, experiment, trained: fresh)
    assert release.current(trained, experiment="demo", path=path) == fresh


def test_collect_without_mlflow_run_uses_the_commit_time(
    tmp_path: Path, saved: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = _check(tmp_path, saved)
    sha = _git_repo(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'absent.db'}")
    found = release.collect(tmp_path, experiment="demo", trained=trained)
    assert (found.version, found.mlflow_run_id, found.trained_at) == (
        f"2024.01.02-030405-{sha[:7]}",
        None,
        "2024-01-02T03:04:05+00:00",
    )
    assert found.git_commit.startswith(sha)
    assert (found.model_md5, found.data_md5) == (trained.metadata["model_md5"], "d" * 32)
    assert not (tmp_path / "absent.db").exists()


def test_current_recomputes_when_head_moved_since_release_json(
    tmp_path: Path, saved: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _git_repo(tmp_path)
    trained = _check(tmp_path, saved)
    path = tmp_path / "release.json"
    path.write_text(
        json.dumps(_release(model_md5=trained.metadata["model_md5"], version="2000.01.01-000000-0000000").to_dict())
    )
    fresh = _release(version="v2")
    monkeypatch.setattr(release, "collect", lambda repo, *, experiment, trained: fresh)
    assert release.current(trained, experiment="demo", path=path) == fresh


def test_current_reads_release_json_written_at_head(
    tmp_path: Path, saved: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _git_repo(tmp_path)
    trained = _check(tmp_path, saved)
    written = _release(model_md5=trained.metadata["model_md5"], version=release.version(tmp_path))
    path = tmp_path / "release.json"
    path.write_text(json.dumps(written.to_dict()))
    monkeypatch.setattr(release, "collect", pytest.fail)
    assert release.current(trained, experiment="demo", path=path) == written
