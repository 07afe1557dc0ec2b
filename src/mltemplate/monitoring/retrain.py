"""`make retrain`: choose the labelled production records a retrain may add to the CSV that data.dvc tracks, and add
them. Only labels of trusted labellers count (retrain.trusted_labellers); rows outside the data contract, rows whose
features the data (or the reference set) already holds and repeats among the new rows are dropped; at most
retrain.max_new_share of the data's rows are added, a seeded sample when more are eligible. Nothing is marked in the
database: a record stays eligible until the data holds it, so a retrain whose pull request never lands leaves its
records to the next one. The pull request is the workflow's part (retrain.yml)."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import StringIO

import numpy as np
import pandas as pd
import sqlalchemy as sa

from mltemplate import atomic, contract
from mltemplate.dvcfiles import to_csv_text, track
from mltemplate.errors import CommandError
from mltemplate.model import TrainedModel, load
from mltemplate.monitoring import codec, reference, store
from mltemplate.monitoring.alerts import Check
from mltemplate.monitoring.drift import feature_drift
from mltemplate.monitoring.reference import read_text
from mltemplate.monitoring.summary import Summary
from mltemplate.params import Params
from mltemplate.paths import DATA_DVC, DVC_LOCK, REFERENCE_CSV, REFERENCE_DVC, TEST_CSV, TRAIN_CSV
from mltemplate.predict import labels, predict
from mltemplate.same_rows import row_keys
from mltemplate.schema import Schema

LABELLER = store.LABELLER


@dataclass(frozen=True)
class Labelled:
    """Logged records with the label that counts among trusted labellers (features, LABEL, LABELLER, ...), and what
    could not be used: records labelled by untrusted labellers only, per labeller; labels of no logged record."""

    records: pd.DataFrame
    untrusted: dict[str, int] = field(default_factory=dict)
    unlogged: int = 0


def labelled_records(db: sa.Engine, trusted: Sequence[str]) -> Labelled:
    """Every logged record with a trusted label, in the order they were answered."""
    with db.connect() as connection:
        labels = store.read_labels(connection, sa.select(store.counted_labels(trusted)))
        everyone = store.read_labels(connection, sa.select(store.counted_labels()))
        ids = sorted(set(labels[codec.REQUEST_ID]))
        chunks = [
            store.read_records(connection, store.requests.c.request_id.in_(ids[start : start + 500]))
            for start in range(0, len(ids), 500)  # keep IN lists short for every database
        ]
    keys = [codec.REQUEST_ID, codec.POSITION]
    others = everyone.merge(labels[keys], on=keys, how="left", indicator=True)
    untrusted = others[others["_merge"] == "left_only"][LABELLER].value_counts()
    if not chunks:
        empty = pd.DataFrame(columns=[*keys, codec.LABEL, LABELLER])
        return Labelled(empty, {str(k): int(v) for k, v in untrusted.items()}, len(labels))
    logged = pd.concat(chunks, ignore_index=True, sort=False).drop(columns=[codec.LABEL])
    found = logged.merge(labels, on=keys, how="inner")
    found = found.sort_values([codec.TS, *keys], kind="stable", ignore_index=True)
    found = found.rename(columns={store.TRUTH: codec.LABEL})
    return Labelled(found, {str(k): int(v) for k, v in untrusted.items()}, len(labels) - len(found))


@dataclass(frozen=True)
class Selection:
    """The rows a retrain adds (`rows`: the CSV's columns, as text; `sources`: their labeller, by the same index),
    how many were dropped and why, how many were eligible, the cap, and how many wait for the next retrain."""

    rows: pd.DataFrame
    sources: pd.Series
    dropped: dict[str, int]
    eligible: int
    cap: int

    @property
    def left(self) -> int:
        return self.eligible - len(self.rows)


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as the CSV will hold them: written the byte-stable way, read back as text."""
    return pd.read_csv(StringIO(to_csv_text(frame)), dtype=str, keep_default_na=False)


def select(
    found: pd.DataFrame,
    *,
    header: Sequence[str],
    target: str,
    features: Sequence[str],
    expected: contract.Contract,
    held: set[int],
    data_rows: int,
    share: float,
    seed: int,
) -> Selection:
    """The rows to add of the labelled records `found`: in the CSV's `header` (the true label under `target`; dropped
    columns empty), within the contract, none whose `features` key is `held` already or repeats an earlier new row,
    and at most `share` of `data_rows`, a sample seeded by `seed` when more are eligible."""
    rows = as_text(found.rename(columns={codec.LABEL: target}).reindex(columns=list(header)))
    sources = found[LABELLER].astype(str).reset_index(drop=True)
    dropped: dict[str, int] = {}

    def drop(mask: pd.Series, reason: str) -> None:
        nonlocal rows, sources
        if mask.any():
            dropped[reason] = int(mask.sum())
        rows, sources = rows[~mask.to_numpy()], sources[~mask.to_numpy()]

    drop(contract.breaches(rows, expected), "outside the data contract")
    known = np.fromiter(held, dtype=np.uint64, count=len(held))
    drop(pd.Series(np.isin(row_keys(rows, features), known)), "features the data or the reference set already holds")
    drop(pd.Series(row_keys(rows, features)).duplicated(keep="first"), "repeats of another new row")
    cap = math.floor(share * data_rows)
    eligible = len(rows)
    if eligible > cap:
        keep = np.sort(np.random.default_rng(seed).choice(eligible, size=cap, replace=False))
        rows, sources = rows.iloc[keep], sources.iloc[keep]
    return Selection(rows.reset_index(drop=True), sources.reset_index(drop=True), dropped, eligible, cap)


def typed(rows: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, pd.Series]:
    """Text rows as the model reads them: (features in schema order, labels as text or numbers)."""
    frame = pd.read_csv(StringIO(to_csv_text(rows)), dtype=schema.dtypes(), keep_default_na=True)
    target = frame[schema.target]
    return frame[list(schema.features)], target.astype(str) if schema.classification else target.astype("float64")


def _balance(rows: pd.DataFrame, schema: Schema) -> dict[str, int] | None:
    return {str(k): int(v) for k, v in rows[schema.target].value_counts().items()} if schema.classification else None


def retrain(db: sa.Engine, params: Params) -> Summary:
    """Add the chosen rows to params.data.raw (carving the reference set out first, the first time), re-track it,
    run the pipeline, and judge the new model on the reference set. CommandError when there is nothing to add."""
    run_pipeline()  # the current model and its splits, reproduced if this checkout lacks them: what is compared with
    current = load(lock=DVC_LOCK)
    schema = current.schema
    trained_on, _ = schema.read(TRAIN_CSV)
    csv, columns = params.data.raw, [*schema.features, schema.target]
    raw = read_text(csv)
    carved = not REFERENCE_DVC.exists()
    if carved:
        raw, held_out = reference.carve(raw, read_text(TEST_CSV), columns)
        if held_out.empty:
            raise CommandError(f"none of {TEST_CSV}'s rows are in {csv}: run `make repro` on this data first")
    else:
        reference.fetch()
        held_out = read_text(REFERENCE_CSV)
    found = labelled_records(db, params.retrain.trusted_labellers)
    if found.records.empty:
        raise CommandError("no labelled production records from a trusted labeller (retrain.trusted_labellers)")
    chosen = select(
        found.records,
        header=list(raw.columns),
        target=schema.target,
        features=schema.features,
        expected=contract.read(),
        held=set(row_keys(raw, schema.features)) | set(row_keys(held_out, schema.features)),
        data_rows=len(raw),
        share=params.retrain.max_new_share,
        seed=params.seed,
    )
    if chosen.rows.empty:
        raise CommandError(f"no labelled production records that the data could take ({chosen.dropped})")
    after = pd.concat([raw, chosen.rows], ignore_index=True)
    if carved:
        atomic.write_text(REFERENCE_CSV, to_csv_text(held_out))
        track(REFERENCE_CSV, REFERENCE_DVC)
    atomic.write_text(csv, to_csv_text(after))
    track(csv, DATA_DVC)
    run_pipeline()
    scoring = reference.judge(current, load(lock=DVC_LOCK), params.evaluate)
    drift = feature_drift(trained_on, typed(chosen.rows, schema)[0], schema, params.monitor.drift)
    return _summary(current, chosen, found, raw, after, scoring, drift, params, carved=carved)


def _summary(
    current: TrainedModel,
    chosen: Selection,
    found: Labelled,
    before: pd.DataFrame,
    after: pd.DataFrame,
    scoring: reference.Scoring,
    drift: list[Check],
    params: Params,
    *,
    carved: bool,
) -> Summary:
    schema = current.schema
    features, truth = typed(chosen.rows, schema)
    output = predict(current, features)
    kinds = chosen.rows[schema.target] if schema.classification else pd.Series("rows", index=chosen.rows.index)
    pairs = pd.DataFrame({"source": chosen.sources.to_numpy(), "label": kinds.to_numpy()})
    by_source = {
        str(source): {str(label): int(n) for label, n in group["label"].value_counts().items()}
        for source, group in pairs.groupby("source")
    }
    agreement, per_label, error = None, {}, {}
    if schema.classification:
        hits = pd.Series(labels(current, output), index=truth.index) == truth
        agreement = float(hits.mean())
        per_label = {str(k): float(v) for k, v in hits.groupby(truth).mean().items()}
    else:
        miss = output - truth.to_numpy()
        error = {"rmse": float(np.sqrt(np.mean(miss**2))), "mae": float(np.mean(np.abs(miss)))}
    few = len(features) < params.monitor.min_rows
    return Summary(
        rows_before=len(before),
        rows_after=len(after),
        share=params.retrain.max_new_share,
        cap=chosen.cap,
        eligible=chosen.eligible,
        added=len(chosen.rows),
        by_source=by_source,
        dropped=chosen.dropped,
        untrusted=found.untrusted,
        unlogged=found.unlogged,
        balance_before=_balance(before, schema),
        balance_after=_balance(after, schema),
        agreement=agreement,
        agreement_by_label=per_label,
        current_error=error,
        drift=drift,
        drift_note=f"fewer new rows than monitor.min_rows ({params.monitor.min_rows}): indicative only"
        if few
        else None,
        reference_rows=scoring.rows,
        carved=carved,
        reference_current=scoring.current,
        reference_retrained=scoring.retrained,
        verdict=[
            {"kind": c.kind, "metric": c.metric, "value": c.value, "limit": c.limit, "passed": c.passed}
            | {"reason": None if c.passed else c.reason()}
            for c in scoring.verdict.criteria
        ],
    )


def run_pipeline() -> None:
    """`dvc repro`: prepare, train and evaluate on the new data version."""
    result = subprocess.run(["dvc", "repro"], check=False)
    if result.returncode != 0:
        raise CommandError(f"dvc repro failed (exit {result.returncode}); the new data is tracked in {DATA_DVC}")
