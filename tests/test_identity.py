"""The release identity: models/release.json's reader, the version of a commit, the model key and the one
constructor of a Release."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from mltemplate.errors import CommandError
from mltemplate.identity import (
    Release,
    ReleaseError,
    current_release,
    head_version,
    model_key,
    new_release,
    read_release,
)
from mltemplate.metrics import METRICS
from mltemplate.params import Params, parse_params
from tests.conftest import nudged_hyperparameter
from tests.release.test_provenance import git_repo
from tests.test_model_metadata import model_metadata


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


def test_release_round_trips_through_its_json(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    path.write_text(_release(model_key="0123456789abcdef").to_json())
    assert read_release(path) == _release(model_key="0123456789abcdef")


def test_no_release_file_is_no_release(tmp_path: Path) -> None:
    assert read_release(tmp_path / "release.json") is None


@pytest.mark.parametrize("text", ["{not json", '{"version": "v1"}'], ids=["not JSON", "fields missing"])
def test_a_broken_release_file_says_to_rewrite_it(tmp_path: Path, text: str) -> None:
    (tmp_path / "release.json").write_text(text)
    with pytest.raises(ReleaseError, match=r"release.json: .*\(run `make bento` to rewrite it\)"):
        read_release(tmp_path / "release.json")


def test_version_is_utc_commit_time_and_short_sha(tmp_path: Path) -> None:
    sha = git_repo(tmp_path, when="2024-01-02T05:04:05+02:00")
    assert head_version(tmp_path) == f"2024.01.02-030405-{sha[:7]}"


def test_version_is_a_valid_docker_tag(tmp_path: Path) -> None:
    git_repo(tmp_path)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", head_version(tmp_path))


def test_version_outside_git_says_so(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no git commit to version from"):
        head_version(tmp_path)


def test_a_new_release_is_versioned_and_dated_by_head(tmp_path: Path) -> None:
    sha = git_repo(tmp_path, when="2024-01-02T03:04:05+00:00")
    found = new_release(model_metadata(), repo=tmp_path)
    assert (found.version, found.git_commit) == (head_version(tmp_path), sha)
    assert (found.model_md5, found.data_md5) == ("m" * 32, model_metadata().data.md5)
    assert (found.trained_at, found.mlflow_run_id, found.model_key) == ("2024-01-02T03:04:05+00:00", None, None)


def test_a_new_release_outside_git_is_unversioned(tmp_path: Path) -> None:
    found = new_release(model_metadata(), repo=tmp_path)
    assert (found.version, found.git_commit) == ("unversioned-mmmmmmm", "unknown")


def test_a_new_release_is_keyed_by_the_params_that_made_it(tmp_path: Path, params: Params) -> None:
    git_repo(tmp_path)
    found = new_release(model_metadata(), repo=tmp_path, params=params, trained_at="2024-05-06T00:00:00+00:00")
    assert found.model_key == model_key("m" * 32, model_metadata().data.md5, params)
    assert found.trained_at == "2024-05-06T00:00:00+00:00"


def test_current_release_reads_release_json_outside_git(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    path.write_text(_release().to_json())
    assert current_release(model_metadata(), path=path, repo=tmp_path) == _release()


def test_current_release_reads_release_json_written_at_head(tmp_path: Path) -> None:
    git_repo(tmp_path)
    written = _release(version=head_version(tmp_path))
    path = tmp_path / "release.json"
    path.write_text(written.to_json())
    assert current_release(model_metadata(), path=path, repo=tmp_path) == written


@pytest.mark.parametrize(
    "stale", [{"model_md5": "0" * 32}, {"version": "2000.01.01-000000-0000000"}], ids=["other model", "older commit"]
)
def test_current_release_describes_head_when_release_json_is_stale(tmp_path: Path, stale: dict[str, str]) -> None:
    sha = git_repo(tmp_path)
    path = tmp_path / "release.json"
    path.write_text(_release(**stale).to_json())
    found = current_release(model_metadata(), path=path, repo=tmp_path)
    assert (found.version, found.model_md5, found.mlflow_run_id) == (head_version(tmp_path), "m" * 32, None)
    assert found.git_commit.startswith(sha)


def changed(params: Params, dotted: str, change: Any) -> Params:
    """`params` with the value at `dotted` replaced by change(old value), validated as params.yaml would be."""
    raw = copy.deepcopy(params.model_dump(mode="json"))
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node[key]
    node[last] = change(node[last])
    found = parse_params(raw)
    assert found != params, f"{dotted}: the change changed nothing"
    return found


def another_threshold(params: Params) -> Any:
    """A change of a threshold table: the task's first metric gets a limit it does not have now."""
    metric = METRICS[params.data.task][0].name
    return lambda table: {**table, metric: 0.25 if table.get(metric) == 0.5 else 0.5}


POLICY: dict[str, tuple[str, Any]] = {
    "monitor thresholds": ("monitor.thresholds", another_threshold),
    "monitor window": ("monitor.window", lambda _: lambda window: "2d" if window == "1d" else "1d"),
    "monitor debounce": ("monitor.debounce", lambda _: lambda d: {"breaches": 1, "windows": d["windows"] + 1}),
    "evaluate thresholds": ("evaluate.thresholds", another_threshold),
    "evaluate tolerance": ("evaluate.tolerance", lambda _: lambda tolerance: round(tolerance + 0.01, 6)),
}
"""Policy: what judges a model (the gate, the monitor), not what makes it."""


@pytest.mark.parametrize("case", list(POLICY))
def test_a_policy_change_keeps_the_model_key(params: Params, case: str) -> None:
    dotted, change = POLICY[case]
    tightened = changed(params, dotted, change(params))
    assert tightened.identity() == params.identity()
    assert model_key("a" * 32, "b" * 32, tightened) == model_key("a" * 32, "b" * 32, params)


MAKERS: dict[str, tuple[str, Any]] = {
    "seed": ("seed", lambda seed: seed + 1),
    "split": ("split.test_size", lambda size: round(size / 2, 6)),
}
"""What makes the model (with the chosen estimator's hyperparameters): each change is a new model key."""


@pytest.mark.parametrize("case", [*MAKERS, "hyperparameter"])
def test_the_model_key_changes_with_the_params_that_make_the_model(params: Params, case: str) -> None:
    if case == "hyperparameter":
        dotted, value = nudged_hyperparameter(params)
        made = changed(params, dotted, lambda _: value)
    else:
        made = changed(params, *MAKERS[case])
    assert model_key("a" * 32, "b" * 32, made) != model_key("a" * 32, "b" * 32, params)


def test_model_key_changes_with_the_model_file_and_the_data(params: Params) -> None:
    key = model_key("a" * 32, "b" * 32, params)
    assert key == model_key("a" * 32, "b" * 32, params)
    assert len({key, model_key("c" * 32, "b" * 32, params), model_key("a" * 32, "c" * 32, params)}) == 3
