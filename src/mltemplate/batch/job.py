"""A batch job on a Dask cluster: plan the input's parts, ship the released model to the workers once, score every
part there (score.py), then publish the predictions under OUTPUT with a summary, or refuse them when rows were bad
and the job was told to refuse (the default): never a silently dropped row."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from mltemplate.batch import score, sources
from mltemplate.batch.score import ModelFiles, PartResult
from mltemplate.batch.sources import Part, SourceError
from mltemplate.errors import Error
from mltemplate.identity import current_release
from mltemplate.model import ModelError, md5, verify
from mltemplate.model_metadata import ModelMetadata, read_model_metadata
from mltemplate.paths import DVC_LOCK, MODEL_FILE, MODEL_METADATA

ON_BAD_ROWS = ("refuse", "report")
SUMMARY = "_summary.json"
REJECTED_DIR = "_rejected"
"""Refused rows (source, row, feature, value, reason) as Parquet; names starting with _ or . are not part of the
predictions dataset for Parquet readers (pyarrow, pandas, Spark, DuckDB)."""
PARTIAL = ".partial"


class BatchError(Error, RuntimeError):
    """The job cannot run, or refused its input; the message says what to do."""


@dataclass(frozen=True)
class Summary:
    """What a job did, written to OUTPUT/_summary.json."""

    status: str
    input: str
    output: str
    model_version: str
    model_md5: str
    on_bad_rows: str
    rows: int
    scored: int
    rejected: int
    parts: int
    workers: int
    seconds: float
    rows_per_s: float
    peak_worker_rss_mib: float
    rejected_rows: list[str] = field(default_factory=list)


@contextmanager
def cluster(address: str | None, *, workers: int, memory_limit: str) -> Iterator[Any]:
    """A client of the Dask scheduler at `address` (DASK_SCHEDULER_ADDRESS), else of a local cluster of `workers`
    processes of one thread each, each stopped by Dask past `memory_limit`."""
    from dask.distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            yield client
        return
    local = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, memory_limit=memory_limit, dashboard_address=None
    )
    with local, Client(local) as client:
        yield client


def released_model() -> ModelFiles:
    """models/model.skops once its md5 agrees with its metadata and dvc.lock (as the service checks it), with the
    release version that names its predictions."""
    locked = verify(lock=DVC_LOCK)
    data = MODEL_FILE.read_bytes()
    metadata = read_model_metadata()
    if md5(MODEL_FILE) != locked or metadata.model_md5 != locked:
        raise ModelError(f"{MODEL_FILE} changed while the job started: run it again")
    return ModelFiles(data, MODEL_METADATA.read_text(encoding="utf-8"), locked, current_release(metadata).version)


def _missing(path: Path, names: list[str], metadata: ModelMetadata) -> None:
    absent = [name for name in metadata.input_schema.features if name not in names]
    if absent:
        raise SourceError(f"{path}: no column {absent[0]!r}; the model takes {list(metadata.input_schema.features)}")


def plan(inputs: Path, metadata: ModelMetadata, client: Any, *, block_bytes: int = sources.BLOCK_BYTES) -> list[Part]:
    """Every part of every input file, each knowing the position of its first row in its file."""
    parts: list[Part] = []
    for path in sources.input_files(inputs):
        source = path.relative_to(inputs).as_posix() if inputs.is_dir() else path.name
        if sources.SUFFIXES[path.suffix.lower()] == "parquet":
            _missing(path, pq.ParquetFile(path).schema_arrow.names, metadata)
            parts += sources.parquet_parts(path, source, len(parts))
            continue
        header, data_start = sources.csv_header(path)
        _missing(path, list(header), metadata)
        blocks = sources.csv_blocks(path, data_start, block_bytes)
        counts = client.gather(client.map(sources.count_lines, [path] * len(blocks), *zip(*blocks, strict=True)))
        first = 0
        for (start, end), count in zip(blocks, counts, strict=True):
            parts.append(Part(path, source, "csv", len(parts), first_row=first, start=start, end=end, header=header))
            first += count
    return parts


def _prepare(output: Path) -> Path:
    partial = output / PARTIAL
    (partial / REJECTED_DIR).mkdir(parents=True)
    return partial


def _publish(output: Path, partial: Path, *, keep_predictions: bool) -> None:
    for path in sorted(partial.glob("part-*.parquet")):
        if keep_predictions:
            path.replace(output / path.name)
    rejected = sorted((partial / REJECTED_DIR).glob("*.parquet"))
    if rejected:
        (output / REJECTED_DIR).mkdir()
        for path in rejected:
            path.replace(output / REJECTED_DIR / path.name)
    shutil.rmtree(partial)


def run(
    inputs: Path,
    output: Path,
    *,
    client: Any,
    files: ModelFiles,
    on_bad_rows: str = "refuse",
    chunk_rows: int = score.CHUNK_ROWS,
    block_bytes: int = sources.BLOCK_BYTES,
) -> Summary:
    """Score `inputs` into `output` on the cluster of `client`; BatchError (after writing the summary and the
    refused rows) when rows were bad and `on_bad_rows` is "refuse"."""
    if on_bad_rows not in ON_BAD_ROWS:
        raise BatchError(f"unknown on_bad_rows {on_bad_rows!r}; choose one of {list(ON_BAD_ROWS)}")
    started = time.perf_counter()
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise BatchError(f"{output} exists and is not an empty directory: give a new OUTPUT")
    metadata = ModelMetadata.model_validate_json(files.metadata)
    parts = plan(inputs, metadata, client, block_bytes=block_bytes)
    partial = _prepare(output)
    shipped = client.scatter(files, broadcast=True)
    futures = client.map(
        score.score_part,
        parts,
        files=shipped,
        out_dir=partial,
        rejected_dir=partial / REJECTED_DIR,
        chunk_rows=chunk_rows,
        pure=False,
    )
    results: list[PartResult] = sorted(client.gather(futures), key=lambda r: r.index)
    rows, rejected = sum(r.rows for r in results), sum(r.rejected for r in results)
    refused = bool(rejected) and on_bad_rows == "refuse"
    _publish(output, partial, keep_predictions=not refused)
    seconds = time.perf_counter() - started
    summary = Summary(
        status="refused" if refused else "scored",
        input=str(inputs),
        output=str(output),
        model_version=files.version,
        model_md5=files.md5,
        on_bad_rows=on_bad_rows,
        rows=rows,
        scored=0 if refused else sum(r.scored for r in results),
        rejected=rejected,
        parts=len(parts),
        workers=len(client.scheduler_info().get("workers", {})),
        seconds=round(seconds, 3),
        rows_per_s=round(rows / seconds, 1) if seconds else 0.0,
        peak_worker_rss_mib=round(max((r.peak_rss_mib for r in results), default=0.0), 1),
        rejected_rows=[line for r in results for line in r.problems][: score.SHOWN],
    )
    (output / SUMMARY).write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    if refused:
        raise BatchError(
            f"{rejected} of {rows} rows break the model's input schema, so no predictions were written (all refused "
            f"rows: {output / REJECTED_DIR}); the first: {'; '.join(summary.rejected_rows[:5])}. Fix them, or score "
            "the others with ON_BAD_ROWS=report"
        )
    return summary


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
