"""Prediction logs for the monitor and retrain cases, written with the monitoring store's own functions: the
held-out records a model answered, optionally shifted (drift) and answered with one answer whatever the truth
(quality), with their true labels as feedback; for the project's task, whichever it is."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from mltemplate.model_metadata import read_model_metadata
from mltemplate.monitoring import codec, labels, migrations, store
from mltemplate.monitoring.feedback import Resolved


def write_log(
    url: str, repo: Path, *, drifted: bool, prefix: str = "r", rows: int | None = None, new: bool = False
) -> int:
    """Log the held-out records of `repo` (its models/metadata.json and data/prepared/test.csv) with their labels
    (from the trusted labeller `default`); drifted: numeric features tripled and every answer the same (the first
    class, or a value past the largest target); new: numeric features moved by 1%, so the records are not rows the
    data already holds. Returns how many records."""
    metadata = read_model_metadata(repo / "models" / "metadata.json")
    schema = metadata.input_schema
    held_out = pd.read_csv(repo / "data" / "prepared" / "test.csv")
    if rows is not None:
        held_out = held_out.head(rows)
    columns = codec.log_columns(schema, metadata.classes)
    truth = held_out[schema.target]
    # A drifted log's one answer: the first class, or a value past every target (worse than the mean: r2 < 0).
    constant = metadata.classes[0] if schema.classification else float(truth.max() + (truth.max() - truth.min()) + 1)
    now = time.time()
    requests = []
    for i, row in held_out.iterrows():
        features = {name: row[name] for name in schema.features}
        if drifted:
            features.update({name: float(row[name]) * 3 + 1 for name in schema.numeric})
        elif new:
            features.update({name: float(row[name]) * 1.01 for name in schema.numeric})
        values = tuple(None if pd.isna(features[n]) else features[n] for n in (*columns.numeric, *columns.categorical))
        if schema.classification:
            answer = constant if drifted else str(row[schema.target])
            others = (len(metadata.classes) - 1) or 1
            predicted, outputs = [answer], [[0.9 if c == answer else 0.1 / others for c in metadata.classes]]
        else:
            predicted, outputs = None, [[constant if drifted else float(row[schema.target])]]
        requests.append(codec.encode(f"{prefix}{i}", now - 60, "v", columns, [values], predicted, outputs))
    db = migrations.open_store(url)
    try:
        with db.begin() as connection:
            store.write_requests(connection, requests)
        given = [Resolved(f"{prefix}{i}", 0, str(row[schema.target])) for i, row in held_out.iterrows()]
        labels.store_labels(db, given, labeller="default", submission=f"{prefix}-truth")
    finally:
        db.dispose()
    return len(requests)
