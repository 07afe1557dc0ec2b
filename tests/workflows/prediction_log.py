"""Prediction logs for the monitor and retrain cases, written with the monitoring store's own functions: the
held-out records a model answered, optionally shifted (drift) and answered with one label whatever the truth
(quality), with their true labels as feedback."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from mltemplate.model_metadata import read_model_metadata
from mltemplate.monitoring import labels, migrations, store
from mltemplate.monitoring.feedback import Resolved


def write_log(
    url: str, repo: Path, *, drifted: bool, prefix: str = "r", rows: int | None = None, new: bool = False
) -> int:
    """Log the held-out records of `repo` (its models/metadata.json and data/prepared/test.csv) with their labels
    (from the trusted labeller `default`); drifted: numeric features tripled and every answer the first class; new:
    numeric features moved by 1%, so the records are not rows the data already holds. Returns how many records."""
    metadata = read_model_metadata(repo / "models" / "metadata.json")
    schema = metadata.input_schema
    held_out = pd.read_csv(repo / "data" / "prepared" / "test.csv")
    if rows is not None:
        held_out = held_out.head(rows)
    now = time.time()
    records = []
    for i, row in held_out.iterrows():
        features = {name: row[name] for name in schema.features}
        if drifted:
            features.update({name: float(row[name]) * 3 + 1 for name in schema.numeric})
        elif new:
            features.update({name: float(row[name]) * 1.01 for name in schema.numeric})
        answer = metadata.classes[0] if drifted else str(row[schema.target])
        others = (len(metadata.classes) - 1) or 1
        records.append(
            {
                "request_id": f"{prefix}{i}",
                "position": 0,
                "ts": now - 60,
                "model_version": "v",
                "features": features,
                "label": answer,
                "probabilities": {c: 0.9 if c == answer else 0.1 / others for c in metadata.classes},
            }
        )
    db = migrations.open_store(url)
    try:
        with db.begin() as connection:
            store.write_predictions(connection, records)
        truth = [Resolved(f"{prefix}{i}", 0, str(row[schema.target])) for i, row in held_out.iterrows()]
        labels.store_labels(db, truth, labeller="default", submission=f"{prefix}-truth")
    finally:
        db.dispose()
    return len(records)
