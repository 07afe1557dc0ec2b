"""One part of a batch job, run on a Dask worker: its rows read in chunks of bounded size, checked by columns.check
(the service's rules), scored by predict.predict, and written as one Parquet file with the input row number and the
model version; every row that is refused is written beside it, by row and feature, with the reason."""

from __future__ import annotations

import hashlib
import io
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mltemplate import columns
from mltemplate.batch.sources import Part, SourceError
from mltemplate.model import ModelError, TrainedModel, loads
from mltemplate.model_metadata import ModelMetadata
from mltemplate.predict import predict

CHUNK_ROWS = 65_536
"""Rows read, checked and scored at a time: what bounds a worker's memory, whatever the size of a part."""
UNSCORABLE = "the model cannot score this row (it raises, or answers non-finite numbers, on it alone)"
SHOWN = 20
"""Refused rows a part describes in its result (all of them go to the rejected file)."""
REJECTED = pa.schema(
    [
        ("source", pa.string()),
        ("row", pa.int64()),
        ("feature", pa.string()),
        ("value", pa.string()),
        ("reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class ModelFiles:
    """What the job ships to every worker once: the model archive as dvc.lock records it, and its metadata."""

    data: bytes
    metadata: str
    md5: str
    version: str


@dataclass(frozen=True)
class PartResult:
    index: int
    rows: int
    scored: int
    rejected: int
    problems: tuple[str, ...]
    peak_rss_mib: float
    seconds: float


_LOADED: dict[str, TrainedModel] = {}
"""The model a worker loaded, by md5: loaded once per worker process, not once per part."""


def model_of(files: ModelFiles) -> TrainedModel:
    """The shipped model, loaded safely (trusted types only) after its bytes proved to be the md5 dvc.lock records."""
    if files.md5 not in _LOADED:
        actual = hashlib.md5(files.data, usedforsecurity=False).hexdigest()
        if actual != files.md5:
            raise ModelError(f"the shipped model has md5 {actual}, not {files.md5} (dvc.lock): refusing to score")
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # one worker process per core: threads inside would fight the others
        _LOADED.clear()
        _LOADED[files.md5] = TrainedModel(loads(files.data), ModelMetadata.model_validate_json(files.metadata))
    return _LOADED[files.md5]


def output_schema(model: TrainedModel) -> pa.Schema:
    """source, row, model_version, then the label and each class's probability, or the value."""
    text = pa.dictionary(pa.int32(), pa.string())
    fields = [("source", text), ("row", pa.int64()), ("model_version", text)]
    if model.schema.classification:
        fields += [("label", pa.string()), *((f"probability_{c}", pa.float64()) for c in model.classes)]
    else:
        fields.append(("value", pa.float64()))
    return pa.schema(fields)


def chunks(part: Part, model: TrainedModel, *, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The part's feature columns, chunk_rows rows at a time."""
    features = list(model.schema.features)
    if part.kind == "parquet":
        # Stream the row group through a 1 MiB buffer: reading whole column chunks held ~1.8x more (a 1Mi-row
        # group of 30 floats: 577 MiB peak against 314 MiB).
        source = pq.ParquetFile(part.path, pre_buffer=False, buffer_size=2**20)
        for batch in source.iter_batches(batch_size=chunk_rows, row_groups=[part.row_group], columns=features):
            yield batch.to_pandas()
        return
    with part.path.open("rb") as handle:
        handle.seek(part.start)
        data = handle.read(part.end - part.start)
    expected = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    dtypes = dict.fromkeys(model.schema.categorical, object)
    read = pd.read_csv(
        io.BytesIO(data),
        header=None,
        names=list(part.header),
        usecols=features,
        dtype=dtypes,
        chunksize=chunk_rows,
        skip_blank_lines=False,
    )
    seen = 0
    with read as reader:
        for frame in reader:
            seen += len(frame)
            yield frame
    if seen != expected:
        raise SourceError(
            f"{part.source}: bytes {part.start}-{part.end} hold {expected} lines but parse as {seen} rows: a quoted "
            "field spans lines, which CSV input cannot have here; convert the file to Parquet"
        )


def _scored(model: TrainedModel, frame: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
    """The model's output for the rows it scores, and the positions of those it cannot (raised on, or answered
    non-finite for, alone): halves are retried until the culprits are single rows."""
    try:
        with np.errstate(all="ignore"):
            output = predict(model, frame)
        finite = np.isfinite(output).reshape(len(frame), -1).all(axis=1)
        if finite.all():
            return output, np.empty(0, dtype=np.int64)
    except Exception:  # kept as the rows' refusal below: nothing is swallowed
        if len(frame) == 1:
            return None, np.array([0])
    if len(frame) == 1:
        return None, np.array([0])
    middle = len(frame) // 2
    first, first_bad = _scored(model, frame.iloc[:middle])
    second, second_bad = _scored(model, frame.iloc[middle:])
    parts = [o for o in (first, second) if o is not None]
    return (np.concatenate(parts) if parts else None), np.concatenate([first_bad, second_bad + middle])


def _table(
    model: TrainedModel, schema: pa.Schema, part: Part, version: str, rows: np.ndarray, output: np.ndarray
) -> pa.Table:
    data: dict[str, object] = {"source": [part.source] * len(rows), "row": rows, "model_version": [version] * len(rows)}
    if model.schema.classification:
        data["label"] = np.asarray(model.classes, dtype=object)[np.argmax(output, axis=1)]
        data.update({f"probability_{c}": output[:, i] for i, c in enumerate(model.classes)})
    else:
        data["value"] = output.reshape(-1)
    return pa.table(data, schema=schema)


def _reject(part: Part, row: int, feature: str | None, value: str | None, reason: str) -> dict[str, object]:
    return {"source": part.source, "row": row, "feature": feature, "value": value, "reason": reason}


def score_part(
    part: Part, files: ModelFiles, out_dir: Path, rejected_dir: Path, *, chunk_rows: int = CHUNK_ROWS
) -> PartResult:
    """Score one part into out_dir/part-<index>.parquet, its refused rows into rejected_dir/part-<index>.parquet."""
    started = time.perf_counter()
    model = model_of(files)
    schema = output_schema(model)
    name = f"part-{part.index:05d}.parquet"
    rows = scored = 0
    shown: list[str] = []
    rejects: list[dict[str, object]] = []
    with pq.ParquetWriter(out_dir / name, schema) as writer:
        for raw in chunks(part, model, chunk_rows=chunk_rows):
            first = part.first_row + rows
            data = {n: columns.read_numbers(raw[n]) if n in model.schema.numeric else raw[n] for n in raw.columns}
            block, problems = columns.check(data, model.schema, nullable=model.metadata.nullable, extra="ignore")
            for problem in problems:
                for row in problem.rows:
                    value = raw[problem.feature].iloc[int(row)]
                    value = value.item() if isinstance(value, np.generic) else value
                    rejects.append(_reject(part, first + int(row), problem.feature, repr(value), problem.reason))
            keep = np.ones(len(block), dtype=bool)
            keep[columns.bad_rows(problems)] = False
            good = block.take(keep).frame()
            output, unscorable = _scored(model, good) if len(good) else (None, np.empty(0, dtype=np.int64))
            positions = np.flatnonzero(keep)
            for row in positions[unscorable]:
                rejects.append(_reject(part, first + int(row), None, None, UNSCORABLE))
            if output is not None:
                positions = np.delete(positions, unscorable)
                writer.write_table(_table(model, schema, part, files.version, first + positions, output))
                scored += len(positions)
            rows += len(raw)
    shown = [f"{r['source']} row {r['row']}: {r['feature']!r} {r['reason']} ({r['value']})" for r in rejects[:SHOWN]]
    if rejects:
        pq.write_table(pa.Table.from_pylist(rejects, schema=REJECTED), rejected_dir / name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rejected = len({r["row"] for r in rejects})
    return PartResult(part.index, rows, scored, rejected, tuple(shown), peak, time.perf_counter() - started)
