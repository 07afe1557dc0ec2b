"""`make retrain`: append the labelled production records that the training data does not hold yet to the CSV that
data.dvc tracks (a new DVC-tracked version of the data), then run the pipeline; the records it appended are listed in
monitoring/retrain.json. `make retrain-used` marks them used in the database once their pull request exists (the
workflow's part, retrain.yml), so a run whose push or PR failed leaves them for the next one (until then, another
`make retrain` appends them again)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from mltemplate import atomic
from mltemplate.errors import CommandError
from mltemplate.monitoring import store
from mltemplate.params import Params
from mltemplate.paths import DATA_DVC, MONITORING_DIR
from mltemplate.pipeline import data

APPENDED_FILE = MONITORING_DIR / "retrain.json"
"""The records the last `make retrain` appended (request id, position), for `make retrain-used`."""


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
        ids = sorted(set(labels[store.REQUEST_ID]))
        chunks = [
            store.read_records(connection, store.requests.c.request_id.in_(ids[start : start + 500]))
            for start in range(0, len(ids), 500)  # keep IN lists short for every database
        ]
    if not chunks:
        return pd.DataFrame(columns=[store.REQUEST_ID, store.POSITION, store.LABEL])
    logged = pd.concat(chunks, ignore_index=True, sort=False).drop(columns=[store.LABEL])
    found = logged.merge(labels, on=[store.REQUEST_ID, store.POSITION], how="inner")
    found = found.sort_values([store.TS, store.REQUEST_ID, store.POSITION], kind="stable", ignore_index=True)
    return found.rename(columns={store.TRUTH: store.LABEL})


def append(db: sa.Engine, params: Params, *, dvc_file: Path = DATA_DVC, appended: Path = APPENDED_FILE) -> int:
    """Append the new labelled records to params.data.raw (its columns, its target) and re-track it with DVC; list
    them in `appended`. Returns how many were appended; CommandError when there are none."""
    found = labelled_records(db)
    if found.empty:
        raise CommandError("no labelled production records that the training data does not already hold")
    csv = params.data.raw
    if not csv.exists():
        raise CommandError(f"{csv} not found: run `make data` first")
    header = list(pd.read_csv(csv, nrows=0).columns)
    new = found.rename(columns={store.LABEL: params.data.target}).reindex(columns=header)  # dropped columns stay empty
    text = data.to_csv_text(new).split("\n", 1)[1]  # without the header
    with csv.open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    data.track(csv, dvc_file)
    keys = [[str(rid), int(pos)] for rid, pos in zip(found[store.REQUEST_ID], found[store.POSITION], strict=True)]
    atomic.write_text(appended, json.dumps({"records": keys}) + "\n")
    return len(found)


def mark_used(db: sa.Engine, appended: Path = APPENDED_FILE) -> int:
    """Remember the records `append` listed as used (their pull request exists), so no retrain adds them again."""
    if not appended.is_file():
        raise CommandError(f"{appended} not found: `make retrain` lists the records it appended there")
    keys = json.loads(appended.read_text(encoding="utf-8"))["records"]
    now = time.time()
    with db.begin() as connection:
        marks = [{"request_id": rid, "position": int(pos), "ts": now} for rid, pos in keys]
        if marks:
            connection.execute(store.insert_ignoring_duplicates(store.retrained, connection), marks)
    appended.unlink()
    return len(keys)


def run_pipeline() -> None:
    """`dvc repro`: prepare, train and evaluate on the new data version."""
    result = subprocess.run(["dvc", "repro"], check=False)
    if result.returncode != 0:
        raise CommandError(f"dvc repro failed (exit {result.returncode}); the appended data is tracked in {DATA_DVC}")
