"""Batch scoring on a real dask.distributed LocalCluster of 2 worker processes, with the model the pipeline copy
trained: predictions equal in-process predict with their input row numbers and the model version, whatever the
file kind and part sizes; bad rows are refused or reported row by row, never dropped; the model is the one dvc.lock
records."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mltemplate.batch import job, score
from mltemplate.batch.sources import SourceError
from mltemplate.model import ModelError, TrainedModel, load
from mltemplate.predict import labels, predict
from tests.conftest import subprocess_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with job.cluster(None, workers=2, memory_limit="1GiB") as client:
        yield client


@pytest.fixture(scope="module")
def files(pipeline_repo: Path) -> score.ModelFiles:
    old = Path.cwd()
    os.chdir(pipeline_repo)  # the model files, dvc.lock and git: read, never written
    try:
        return job.released_model()
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def trained(pipeline_repo: Path) -> TrainedModel:
    return load(model_path=pipeline_repo / "models/model.skops", metadata_path=pipeline_repo / "models/metadata.json")


@pytest.fixture(scope="module")
def rows(pipeline_repo: Path, trained: TrainedModel) -> pd.DataFrame:
    test = pd.read_csv(pipeline_repo / "data/prepared/test.csv")[list(trained.schema.features)]
    frame = pd.concat([test] * 8, ignore_index=True)
    frame.insert(0, "customer_id", range(len(frame)))  # a column the model does not take: ignored
    return frame


def expected(trained: TrainedModel, frame: pd.DataFrame) -> list[Any]:
    output = predict(trained, frame[list(trained.schema.features)])
    return labels(trained, output) if trained.schema.classification else output.tolist()


def answers(trained: TrainedModel, scored: pd.DataFrame) -> list[Any]:
    return scored["label"].tolist() if trained.schema.classification else scored["value"].tolist()


@pytest.mark.parametrize("kind", ["csv", "parquet", "directory"])
def test_predictions_are_in_process_predictions_with_row_numbers_and_version(
    client: Any, files: score.ModelFiles, trained: TrainedModel, rows: pd.DataFrame, tmp_path: Path, kind: str
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    if kind in ("csv", "directory"):
        rows.to_csv(inputs / "a.csv", index=False)
    if kind in ("parquet", "directory"):
        rows.to_parquet(inputs / "b.parquet", row_group_size=300)
    source = inputs if kind == "directory" else next(inputs.iterdir())
    summary = job.run(source, tmp_path / "out", client=client, files=files, chunk_rows=128, block_bytes=20_000)
    scored = pd.read_parquet(tmp_path / "out")
    per_file = len(list(inputs.iterdir()))
    assert (summary.status, summary.rows, summary.scored, summary.rejected) == (
        "scored",
        *(len(rows) * per_file,) * 2,
        0,
    )
    assert summary.parts > per_file  # several parts per file, each knowing where its rows begin
    for name, group in scored.groupby("source", observed=True):
        group = group.sort_values("row")
        assert group["row"].tolist() == list(range(len(rows))), name
        assert answers(trained, group) == expected(trained, rows)
    assert set(scored["model_version"]) == {files.version}
    written = json.loads((tmp_path / "out" / job.SUMMARY).read_text())
    assert written["peak_worker_rss_mib"] > 0
    assert written["workers"] == 2


def _with_bad_rows(rows: pd.DataFrame, trained: TrainedModel) -> tuple[pd.DataFrame, dict[int, str]]:
    x = next(n for n in trained.schema.numeric if n not in trained.metadata.nullable)
    bad = rows.head(40).astype(object)
    bad.loc[3, x], bad.loc[17, x], bad.loc[29, x] = "not-a-number", None, "inf"
    return bad, {3: "is not a number", 17: "is null", 29: "is not a finite number"}


def test_a_file_with_bad_rows_is_refused_and_every_bad_row_reported(
    client: Any, files: score.ModelFiles, trained: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    bad, reasons = _with_bad_rows(rows, trained)
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(job.BatchError, match=r"3 of 40 rows break the model's input schema, so no predictions"):
        job.run(tmp_path / "bad.csv", tmp_path / "out", client=client, files=files)
    assert not list((tmp_path / "out").glob("part-*.parquet"))
    rejected = pd.read_parquet(tmp_path / "out" / job.REJECTED_DIR).sort_values("row")
    assert rejected["row"].tolist() == sorted(reasons)
    for row, reason in zip(rejected["row"], rejected["reason"], strict=True):
        assert reasons[row] in reason
    assert json.loads((tmp_path / "out" / job.SUMMARY).read_text())["status"] == "refused"


def test_report_scores_the_good_rows_and_reports_the_bad_ones(
    client: Any, files: score.ModelFiles, trained: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    bad, reasons = _with_bad_rows(rows, trained)
    bad.to_csv(tmp_path / "bad.csv", index=False)
    summary = job.run(tmp_path / "bad.csv", tmp_path / "out", client=client, files=files, on_bad_rows="report")
    scored = pd.read_parquet(tmp_path / "out").sort_values("row")
    assert (summary.rows, summary.scored, summary.rejected) == (40, 37, 3)
    assert scored["row"].tolist() == [r for r in range(40) if r not in reasons]
    good = rows.head(40).drop(index=list(reasons))
    assert answers(trained, scored) == expected(trained, good)
    assert sorted(pd.read_parquet(tmp_path / "out" / job.REJECTED_DIR)["row"]) == sorted(reasons)


def test_a_file_without_a_feature_is_refused_by_name(
    client: Any, files: score.ModelFiles, trained: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    missing = trained.schema.features[-1]
    rows.drop(columns=[missing]).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(SourceError, match=f"no column {missing!r}"):
        job.run(tmp_path / "in.parquet", tmp_path / "out", client=client, files=files)


def test_an_output_that_holds_files_is_refused(client: Any, files: score.ModelFiles, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(job.BatchError, match="is not an empty directory"):
        job.run(tmp_path, tmp_path / "out", client=client, files=files)


def test_a_model_whose_bytes_are_not_the_locked_file_is_not_loaded(files: score.ModelFiles) -> None:
    forged = replace(files, data=files.data + b"\0")
    with pytest.raises(ModelError, match=f"not {files.md5}"):
        score.model_of(forged)


def test_a_quoted_line_break_across_lines_is_refused_not_misnumbered(
    client: Any, files: score.ModelFiles, trained: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    frame = rows.head(30).copy()
    frame["customer_id"] = frame["customer_id"].map(lambda i: f"line\nbreak {i}")
    frame.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(Exception, match="a quoted field spans lines"):
        job.run(tmp_path / "in.csv", tmp_path / "out", client=client, files=files)


def test_make_predict_batch_takes_input_and_output_from_the_environment(
    pipeline_repo: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.head(50).to_parquet(tmp_path / "in $(touch pwned).parquet")
    env = subprocess_env(INPUT=str(tmp_path / "in $(touch pwned).parquet"), OUTPUT=str(tmp_path / "out"))
    result = subprocess.run(  # RUN= : this checkout's environment, as tests/release/test_deploy.py runs make
        ["make", "-s", "-o", "setup", "-o", ".venv/.synced", "predict-batch", "RUN="],
        cwd=pipeline_repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["scored"] == 50
    assert not (pipeline_repo / "pwned").exists()
    assert not (tmp_path / "pwned").exists()


def test_unscorable_rows_are_found_by_halving(trained: TrainedModel) -> None:
    class Breaks:
        """A model that raises on any value above 1e300, as a scaler's overflow makes a real one raise."""

        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            if (frame.to_numpy() > 1e300).any():
                raise ValueError("Input X contains infinity")
            return np.full((len(frame), 2), 0.5)

    model = TrainedModel(Breaks(), trained.metadata.model_copy(update={"classes": ["a", "b"]}))  # type: ignore[arg-type]
    if not model.schema.classification:
        pytest.skip("the stub stands for a classifier")
    frame = pd.DataFrame(np.ones((16, len(model.schema.features))), columns=list(model.schema.features))
    frame.iloc[[2, 11], 0] = 1e308
    output, unscorable = score._scored(model, frame)
    assert unscorable.tolist() == [2, 11]
    assert output is not None
    assert len(output) == 14
