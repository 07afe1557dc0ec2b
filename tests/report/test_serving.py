"""serving.py: both services up at once, alternating load runs (base, PR, PR, base, ...), and the reason a side
that cannot serve leaves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mltemplate.report import loadtest
from mltemplate.report.serving import measure_serving


@pytest.fixture
def measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fake services and load runs that record which side each counted run went to."""
    order: list[str] = []

    @contextmanager
    def served(repo: Path, **_: object) -> Iterator[str]:
        yield "http://base" if repo.name == "base" else "http://pr"

    def measure(url: str, body: bytes, *, concurrency: int, **_: object) -> loadtest.LoadStats:
        if concurrency > 1:  # not the warm-up
            order.append(url.removeprefix("http://").removesuffix("/predict"))
        return loadtest.LoadStats(10, 0, 1.0, 10.0, 1.0, 2.0, 3.0, {200: 10})

    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "predict.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loadtest, "served", served)
    monkeypatch.setattr(loadtest, "measure", measure)
    return order


def test_load_runs_alternate_abba(measured: list[str], tmp_path: Path) -> None:
    serving = measure_serving(tmp_path / "base", rounds=4, seconds=1.0, concurrency=2)
    assert measured == ["base", "pr", "pr", "base", "base", "pr", "pr", "base"]
    assert (len(serving.base.runs), len(serving.pr.runs)) == (4, 4)


def test_a_side_without_a_model_leaves_its_reason(measured: list[str]) -> None:
    reason = "the base's model could not be had: `dvc repro train` at main failed"
    serving = measure_serving(None, rounds=2, seconds=1.0, concurrency=2, base_missing=reason)
    assert measured == ["pr", "pr"]
    assert serving.base.reason == reason
    assert serving.base.runs == []


def test_a_side_that_cannot_serve_leaves_the_first_line_of_its_error(
    measured: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextmanager
    def broken(repo: Path, **_: object) -> Iterator[str]:
        if repo.name == "base":
            raise loadtest.LoadTestError("bentoml serve exited with 1\nTraceback ...")
        yield "http://pr"

    monkeypatch.setattr(loadtest, "served", broken)
    serving = measure_serving(tmp_path / "base", rounds=2, seconds=1.0, concurrency=2)
    assert serving.base.reason == "bentoml serve exited with 1"
    assert measured == ["pr", "pr"]


def test_without_an_example_request_nothing_is_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    serving = measure_serving(tmp_path, rounds=2, seconds=1.0, concurrency=2)
    assert serving.base.reason == serving.pr.reason == "examples/predict.json not found"
