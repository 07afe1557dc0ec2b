"""Prediction logs for the monitor and retrain cases, written with the monitoring store's own functions: the
held-out records a model answered, optionally shifted (drift) and answered with one label whatever the truth
(quality), with their true labels as feedback."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from mltemplate.model_metadata import read_model_metadata
from mltemplate.monitoring import store


def write_log(url: str, repo: Path, *, drifted: bool, prefix: str = "r", rows: int | None = None) -> int:
    """Log the held-out records of `repo` (its models/metadata.json and data/prepared/test.csv) with their labels;
    drifted: numeric features tripled and every answer the first class. Returns how many records."""
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
    db = store.open_store(url)
    try:
        with db.begin() as connection:
            store.write_predictions(connection, records)
            connection.execute(
                store.feedback.insert(),
                [
                    {"request_id": f"{prefix}{i}", "position": 0, "label": str(row[schema.target]), "ts": now}
                    for i, row in held_out.iterrows()
                ],
            )
    finally:
        db.dispose()
    return len(records)
