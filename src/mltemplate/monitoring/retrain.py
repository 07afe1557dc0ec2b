"""`make retrain`: append the labelled production records that the training data does not hold yet to the CSV that
data.dvc tracks (a new DVC-tracked version of the data), then run the pipeline. The records appended are remembered
in the database, so the next retrain adds only newer ones. The pull request is the workflow's part (retrain.yml)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from mltemplate.dvcfiles import to_csv_text, track
from mltemplate.errors import CommandError
from mltemplate.monitoring import codec, store
from mltemplate.params import Params
from mltemplate.paths import DATA_DVC


def labelled_records(db: sa.Engine) -> pd.DataFrame:
    """Logged records with a true label that no retrain has appended yet, in the order they were answered: their
    features, LABEL (the true label), REQUEST_ID and POSITION."""
    f, r = store.feedback, store.retrained
    pending = (
        sa.select(f.c.request_id, f.c.position, f.c.label)
        .select_from(f.outerjoin(r, sa.and_(f.c.request_id == r.c.request_id, f.c.position == r.c.position)))
        .where(r.c.request_id.is_(None))
    )
    with db.connect() as connection:
        labels = store.read_labels(connection, pending)
        ids = sorted(set(labels[codec.REQUEST_ID]))
        chunks = [
            store.read_records(connection, store.requests.c.request_id.in_(ids[start : start + 500]))
            for start in range(0, len(ids), 500)  # keep IN lists short for every database
        ]
    if not chunks:
        return pd.DataFrame(columns=[codec.REQUEST_ID, codec.POSITION, codec.LABEL])
    logged = pd.concat(chunks, ignore_index=True, sort=False).drop(columns=[codec.LABEL])
    found = logged.merge(labels, on=[codec.REQUEST_ID, codec.POSITION], how="inner")
    found = found.sort_values([codec.TS, codec.REQUEST_ID, codec.POSITION], kind="stable", ignore_index=True)
    return found.rename(columns={store.TRUTH: codec.LABEL})


def append(db: sa.Engine, params: Params, *, dvc_file: Path = DATA_DVC) -> int:
    """Append the new labelled records to params.data.raw (its columns, its target) and re-track it with DVC.
    Returns how many were appended; CommandError when there are none."""
    found = labelled_records(db)
    if found.empty:
        raise CommandError("no labelled production records that the training data does not already hold")
    csv = params.data.raw
    if not csv.exists():
        raise CommandError(f"{csv} not found: run `make data` first")
    header = list(pd.read_csv(csv, nrows=0).columns)
    new = found.rename(columns={codec.LABEL: params.data.target}).reindex(columns=header)  # dropped columns stay empty
    text = to_csv_text(new).split("\n", 1)[1]  # without the header
    with csv.open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    track(csv, dvc_file)
    now = time.time()
    with db.begin() as connection:
        marks = [
            {"request_id": rid, "position": int(pos), "ts": now}
            for rid, pos in zip(found[codec.REQUEST_ID], found[codec.POSITION], strict=True)
        ]
        connection.execute(store.insert_ignoring_duplicates(store.retrained, connection), marks)
    return len(found)


def run_pipeline() -> None:
    """`dvc repro`: prepare, train and evaluate on the new data version."""
    result = subprocess.run(["dvc", "repro"], check=False)
    if result.returncode != 0:
        raise CommandError(f"dvc repro failed (exit {result.returncode}); the appended data is tracked in {DATA_DVC}")
