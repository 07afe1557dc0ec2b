"""`make predict-batch`: score INPUT (a CSV or Parquet file, or a directory of them) with the released model into
OUTPUT (a new directory of Parquet files) on the Dask cluster at DASK_SCHEDULER_ADDRESS, else a local one."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from mltemplate.batch import job, score


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.batch", description=__doc__)
    parser.add_argument("input", type=Path, help="a CSV or Parquet file, or a directory of them")
    parser.add_argument("output", type=Path, help="a new (or empty) directory for the predictions")
    parser.add_argument(
        "--on-bad-rows",
        choices=job.ON_BAD_ROWS,
        default="refuse",
        help="refuse (default): no predictions when any row is bad; report: score the others; both list every bad row",
    )
    parser.add_argument("--workers", type=int, default=job.default_workers(), help="local cluster: worker processes")
    parser.add_argument("--memory-limit", default="1GiB", help="local cluster: memory per worker before Dask stops it")
    parser.add_argument("--chunk-rows", type=int, default=score.CHUNK_ROWS, help="rows a worker holds at a time")
    args = parser.parse_args(argv)
    files = job.released_model()
    address = os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    where = address or f"a local cluster of {args.workers} workers ({args.memory_limit} each)"
    print(f"predict-batch: model {files.version} ({files.md5}) on {where}", file=sys.stderr)
    with job.cluster(address, workers=args.workers, memory_limit=args.memory_limit) as client:
        summary = job.run(
            args.input.resolve(),
            args.output.resolve(),
            client=client,
            files=files,
            on_bad_rows=args.on_bad_rows,
            chunk_rows=args.chunk_rows,
        )
    print(json.dumps(asdict(summary), indent=2))


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
