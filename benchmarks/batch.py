"""Batch scoring benchmark: `make predict-batch` (python -m mltemplate.batch, the local Dask cluster of one worker per
core) on a Parquet file of BENCH_BATCH_ROWS rows (default 10 million: test-set rows, jittered), against in-process
predict on one core over the same chunks; peak memory per worker from the job's summary (goal: under 1 GiB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mltemplate.batch.score import CHUNK_ROWS
from mltemplate.model import load
from mltemplate.predict import predict

REPO = Path.cwd()
ROWS = int(os.environ.get("BENCH_BATCH_ROWS", "10000000"))
ROW_GROUP = 1_048_576
"""pyarrow's default row group: what a file written by pandas or Spark typically holds."""
TARGET_MIB = 1024.0


def write_input(path: Path, rows: int, *, seed: int = 0) -> None:
    """`rows` jittered test-set rows, one row group at a time (the writer never holds the whole file)."""
    trained = load(model_path=REPO / "models/model.skops", metadata_path=REPO / "models/metadata.json")
    test = pd.read_csv(REPO / "data/prepared/test.csv")[list(trained.schema.features)]
    rng = np.random.default_rng(seed)
    writer = None
    try:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            group = test.sample(n, replace=True, random_state=int(rng.integers(2**31))).reset_index(drop=True)
            for name in trained.schema.numeric:
                group[name] = group[name] * rng.normal(1.0, 0.01, n)
            table = pa.Table.from_pandas(group, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()


def in_process_rows_per_s(path: Path, *, chunks: int = 8) -> float:
    """predict.predict on one core (one BLAS thread) over the file's first chunks, as a worker reads them."""
    from threadpoolctl import threadpool_limits

    trained = load(model_path=REPO / "models/model.skops", metadata_path=REPO / "models/metadata.json")
    batches = pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS, columns=list(trained.schema.features))
    frames = [batch.to_pandas() for _, batch in zip(range(chunks), batches, strict=False)]
    with threadpool_limits(limits=1):
        predict(trained, frames[0])  # warm
        started = time.perf_counter()
        for frame in frames:
            predict(trained, frame)
        seconds = time.perf_counter() - started
    return sum(len(f) for f in frames) / seconds


def run() -> str:
    """The `## Batch scoring` section of BENCHMARKS.md."""
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        source, out = Path(scratch) / "input.parquet", Path(scratch) / "out"
        write_input(source, ROWS)
        size_mib = source.stat().st_size / 2**20
        single = in_process_rows_per_s(source)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "mltemplate.batch", "--", str(source), str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"python -m mltemplate.batch failed:\n{result.stderr[-3000:]}")
        summary = json.loads(result.stdout)
    peak = summary["peak_worker_rss_mib"]
    rate = summary["rows_per_s"]
    return "\n".join(
        [
            "## Batch scoring (`make predict-batch`)",
            "",
            f"A Parquet file of {summary['rows']:,} rows ({size_mib:,.0f} MiB, row groups of {ROW_GROUP:,}) scored on "
            f"the local Dask cluster ({summary['workers']} worker processes, 1 thread each, 1 GiB memory limit, "
            f"chunks of {CHUNK_ROWS:,} rows), against in-process `predict.predict` on one core over the same chunks.",
            "",
            "| measure | value | goal |",
            "|---|---|---|",
            f"| rows | {summary['rows']:,} scored, {summary['rejected']} refused | |",
            f"| job time (plan, ship the model, score, publish) | {summary['seconds']:.1f} s | |",
            f"| wall time of the command (with cluster start and stop) | {wall:.1f} s | |",
            f"| rows/s, job | {rate:,.0f} | |",
            f"| rows/s, in-process predict on one core | {single:,.0f} | |",
            f"| job / one core | {rate / single:.2f}x | |",
            f"| peak RSS per worker | {peak:,.0f} MiB | < {TARGET_MIB:,.0f} MiB |",
            "",
            f"- {'met' if peak < TARGET_MIB else 'MISSED'}: peak memory per worker {peak:,.0f} MiB (goal < 1 GiB)",
            "",
        ]
    )
