"""The prediction log's codec: a request's records to one `prediction_requests` row and back; no database or file."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from mltemplate.columns import Block
from mltemplate.errors import Error
from mltemplate.schema import Schema

# A logged request's numbers (numeric features, class probabilities or predicted values) are float64 arrays stored
# as bytes, its text (categorical features, labels) JSON lists. Encoding and inserting a 256-record request that way
# costs the service about 0.3 ms of CPU, where a row per record with JSON features cost it about 10 ms, more than
# scoring the request (docs/monitoring.md).

FLOAT = np.dtype("<f8")

REQUEST_ID = "__request_id__"
POSITION = "__position__"
TS = "__ts__"
CLIENT_REQUEST_ID = "__client_request_id__"
MODEL_VERSION = "__model_version__"
LABEL = "__label__"
OUTPUT = "__output__:"
"""Names of the columns `decode` adds beside the features (an output column is OUTPUT + class or target)."""


Rows = Sequence[Sequence[Any]] | Block
"""A request's records: tuples of feature values in `Columns` order, or a columns.Block (columnar bodies)."""


class CodecError(Error, ValueError):
    """Per-record dicts that do not make a request: their positions are not 0..n-1."""


@dataclass(frozen=True)
class Columns:
    """What a logged request's arrays hold: feature names by kind, in the order of the service's rows (numeric
    first, as Schema.features), and the names of the outputs (the model's classes, or the regression target)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    outputs: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical), "outputs": list(self.outputs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[str]]) -> Columns:
        return cls(tuple(data["numeric"]), tuple(data["categorical"]), tuple(data["outputs"]))


def log_columns(schema: Schema, classes: Sequence[str]) -> Columns:
    """What the log stores of a model's answers: its features in the service's row order, then the class
    probabilities, or the predicted value under the target's name (regression)."""
    outputs = tuple(classes) if schema.classification else (schema.target,)
    return Columns(schema.numeric, schema.categorical, outputs)


def encode(
    request_id: str,
    ts: float,
    model_version: str,
    columns: Columns,
    rows: Rows,
    labels: Sequence[str] | None,
    outputs: Any,
    *,
    client_request_id: str | None = None,
) -> dict[str, Any]:
    """One request as a row of `store.requests`. `rows` hold the feature values in `columns` order (numbers or None,
    then text or None); `outputs` is records x len(columns.outputs) numbers; `client_request_id` is the client's
    X-Request-ID, if any."""
    count, width = len(rows), len(columns.numeric)
    if isinstance(rows, Block):  # a columnar body (V2 tensors, /invocations): no per-record tuples
        numeric = rows.numeric.astype(FLOAT, copy=False).reshape(count, width)
        categorical = [[None if v != v else v for v in column] for column in rows.categorical.T.tolist()]
    elif columns.categorical and count:
        values = list(zip(*rows, strict=True))
        numeric = np.array(values[:width], dtype=FLOAT).reshape(width, count).T
        categorical = [list(column) for column in values[width:]]
    else:  # all numeric: numpy reads the values straight from the tuples
        try:
            numeric = np.fromiter(itertools.chain.from_iterable(rows), dtype=FLOAT, count=count * width)
        except TypeError:  # a null: np.array makes it NaN (fromiter cannot)
            numeric = np.array(rows, dtype=FLOAT)
        numeric = numeric.reshape(count, width)
        categorical = [[] for _ in columns.categorical]
    answered = np.asarray(outputs, dtype=FLOAT).reshape(count, len(columns.outputs))
    return {
        "request_id": request_id,
        "ts": ts,
        "model_version": model_version,
        "records": count,
        "columns": columns.to_dict(),
        "numeric": numeric.tobytes(),
        "categorical": categorical,
        "labels": None if labels is None else list(labels),
        "outputs": answered.tobytes(),
        "client_request_id": client_request_id,
    }


def to_json_safe(row: Mapping[str, Any]) -> dict[str, Any]:
    """An encoded row with its byte strings in base64, for the spool's JSON lines; `from_json_safe` undoes it."""
    return {k: base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for k, v in row.items()}


def from_json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    row = {k: base64.b64decode(data[k]) if k in {"numeric", "outputs"} else v for k, v in data.items()}
    row.setdefault("client_request_id", None)  # a spool line written before the log kept the client's id
    return row


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, Real) and not isinstance(value, bool))


def encode_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-record dicts (request_id, position, ts, model_version, features, label, probabilities) grouped into
    encoded requests: how schema version 2's rows move, and a plain way to write a log in tests. A feature whose
    values are all numbers (or null) in a request is numeric."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        grouped.setdefault(str(record["request_id"]), []).append(record)
    out = []
    for request_id, group in grouped.items():
        group = sorted(group, key=lambda r: int(r["position"]))
        if [int(r["position"]) for r in group] != list(range(len(group))):
            raise CodecError(f"request {request_id!r}: positions are not 0..{len(group) - 1}")
        names = list(dict.fromkeys(name for r in group for name in r["features"]))
        numeric = tuple(n for n in names if all(_is_number(r["features"].get(n)) for r in group))
        categorical = tuple(n for n in names if n not in numeric)
        outputs = tuple(dict.fromkeys(name for r in group for name in r["probabilities"]))
        columns = Columns(numeric, categorical, outputs)
        first = group[0]
        out.append(
            encode(
                request_id,
                float(first["ts"]),
                str(first["model_version"]),
                columns,
                [tuple(r["features"].get(n) for n in (*numeric, *categorical)) for r in group],
                [r["label"] for r in group],
                [[r["probabilities"].get(o, np.nan) for o in outputs] for r in group],
            )
        )
    return out


def decode(rows: Sequence[Any]) -> pd.DataFrame:
    """Stored requests that share their columns as one frame: a row per record, the feature columns, then
    REQUEST_ID, POSITION, TS, CLIENT_REQUEST_ID, MODEL_VERSION, LABEL and an OUTPUT column per output."""
    if not rows:
        return pd.DataFrame(columns=[REQUEST_ID, POSITION, TS, CLIENT_REQUEST_ID, MODEL_VERSION, LABEL])
    columns = Columns.from_dict(rows[0].columns)
    counts = np.array([int(row.records) for row in rows])
    total = int(counts.sum())
    numeric = np.frombuffer(b"".join(row.numeric for row in rows), dtype=FLOAT).reshape(total, len(columns.numeric))
    outputs = np.frombuffer(b"".join(row.outputs for row in rows), dtype=FLOAT).reshape(total, len(columns.outputs))
    data: dict[str, Any] = {name: numeric[:, i] for i, name in enumerate(columns.numeric)}
    for i, name in enumerate(columns.categorical):
        data[name] = pd.array([value for row in rows for value in row.categorical[i]], dtype=object)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    data[REQUEST_ID] = np.repeat(np.array([row.request_id for row in rows], dtype=object), counts)
    data[POSITION] = np.arange(total) - starts
    data[TS] = np.repeat(np.array([float(row.ts) for row in rows]), counts)
    data[CLIENT_REQUEST_ID] = np.repeat(
        np.array([getattr(row, "client_request_id", None) for row in rows], dtype=object), counts
    )
    data[MODEL_VERSION] = np.repeat(np.array([row.model_version for row in rows], dtype=object), counts)
    labels = [label for row in rows for label in (row.labels if row.labels is not None else [None] * row.records)]
    data[LABEL] = pd.array(labels, dtype=object)
    data.update({OUTPUT + name: outputs[:, i] for i, name in enumerate(columns.outputs)})
    return pd.DataFrame(data, index=pd.RangeIndex(total))
