"""One monitor run: read a window of the prediction log (and the labels sent for it), test drift against the rows
the model was trained on and quality against `monitor.thresholds`, debounce the breaches against earlier runs, and
store the run in the database."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from mltemplate.model import ModelError, load
from mltemplate.model_metadata import ModelMetadata
from mltemplate.monitoring import codec, store
from mltemplate.monitoring.alerts import Check, debounce
from mltemplate.monitoring.drift import feature_drift, prediction_drift
from mltemplate.monitoring.quality import quality_checks, scores
from mltemplate.params import MonitorParams
from mltemplate.paths import TRAIN_CSV
from mltemplate.predict import labels, predict

TRUTH = store.TRUTH
PREDICTED = "__predicted__"
TS = codec.TS


@dataclass(frozen=True)
class Reference:
    """What production is compared with: the training rows and the model's own answers for them (labels, or
    predicted numbers for regression)."""

    features: pd.DataFrame
    predicted: list[Any]


@dataclass(frozen=True)
class Outcome:
    """What a run found: every check, the ones that alert after debouncing, and notes on what it could not judge."""

    window_start: float
    window_end: float
    rows: int
    labelled: int
    checks: list[Check]
    alerts: list[Check]
    notes: list[str] = field(default_factory=list)
    run_id: int | None = None
    window: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)

    @property
    def breached(self) -> list[Check]:
        return [c for c in self.checks if c.breached]

    @property
    def pending(self) -> list[Check]:
        """Breaches that have not (yet) happened often enough to alert."""
        fired = {c.key for c in self.alerts}
        return [c for c in self.breached if c.key not in fired]

    @property
    def metrics(self) -> dict[str, float]:
        return {c.name: c.value for c in self.checks if c.kind == "quality"}


def read_window(db: sa.Engine, start: float, end: float, metadata: ModelMetadata) -> pd.DataFrame:
    """The logged records answered in [start, end): one row each, features in schema order, the predicted label
    (regression: the predicted value), the true label (None when none was sent), the time, and an OUTPUT column per
    model output (NaN for records an older model answered without it)."""
    schema = metadata.input_schema
    r, f = store.requests, store.counted_labels()
    in_window = (r.c.ts >= start, r.c.ts < end)
    truth_query = (
        sa.select(f.c.request_id, f.c.position, f.c.label, f.c.labeller)
        .select_from(f.join(r, f.c.request_id == r.c.request_id))
        .where(*in_window)
    )
    with db.connect() as connection:
        logged = store.read_records(connection, *in_window)
        truth = store.read_labels(connection, truth_query)
    logged[codec.POSITION] = logged[codec.POSITION].astype(int)  # an empty window's columns have no dtype yet
    logged = logged.merge(truth, on=[codec.REQUEST_ID, codec.POSITION], how="left", sort=False)
    window = logged.reindex(columns=list(schema.features))  # a feature an older model's requests lack is NaN
    outputs = output_columns(metadata)
    predicted = codec.LABEL if schema.classification else outputs[0]
    window[PREDICTED] = logged.get(predicted, None)
    window[TRUTH] = logged[TRUTH].astype(object).where(logged[TRUTH].notna(), None)
    window[TS] = logged[codec.TS]
    for column in outputs:
        window[column] = logged.get(column, np.nan)
    return window


def output_columns(metadata: ModelMetadata) -> list[str]:
    """The window's columns of this model's logged outputs: one per class (probabilities), or the target."""
    return [codec.OUTPUT + name for name in codec.log_columns(metadata.input_schema, metadata.classes).outputs]


def history(db: sa.Engine, runs: int) -> list[list[str]]:
    """The breached keys of the last `runs` monitor runs, newest first."""
    if runs <= 0:
        return []
    query = sa.select(store.monitor_runs.c.breaches).order_by(store.monitor_runs.c.id.desc()).limit(runs)
    with db.connect() as connection:
        return [list(keys) for (keys,) in connection.execute(query)]


def metric_history(db: sa.Engine, runs: int = 50) -> list[tuple[float, dict[str, float]]]:
    """(time, metric values) of the last `runs` runs that judged quality, oldest first: the 'metric over time'."""
    query = sa.select(store.monitor_runs.c.ts, store.monitor_runs.c.results).order_by(store.monitor_runs.c.id.desc())
    out = []
    with db.connect() as connection:
        for ts, results in connection.execute(query.limit(runs)):
            values = {c["name"]: c["value"] for c in results if c["kind"] == "quality"}
            if values:
                out.append((float(ts), values))
    return out[::-1]


def judge(
    window: pd.DataFrame, reference: Reference, metadata: ModelMetadata, params: MonitorParams
) -> tuple[list[Check], list[str]]:
    """Every check the window allows, and a note for each kind it had too few rows for."""
    schema = metadata.input_schema
    checks: list[Check] = []
    notes: list[str] = []
    if len(window) >= params.min_rows:
        checks += feature_drift(reference.features, window, schema, params.drift)
        checks.append(
            prediction_drift(
                reference.predicted, list(window[PREDICTED]), params.drift, numeric=not schema.classification
            )
        )
    else:
        notes.append(
            f"drift not judged: {len(window)} logged records in the window, monitor.min_rows is {params.min_rows}"
        )
    outputs = output_columns(metadata)
    # Records another model answered without one of this model's outputs cannot be scored as this model's.
    labelled = window[window[TRUTH].notna() & window[outputs].notna().all(axis=1)]
    if len(labelled) >= params.min_labels:
        values = scores(
            schema.task, list(labelled[TRUTH]), labelled[outputs].to_numpy(), metadata.classes, schema.positive_class
        )
        checks += quality_checks(values, params.thresholds)
    else:
        notes.append(
            f"quality not judged: {len(labelled)} labelled records in the window, monitor.min_labels is "
            f"{params.min_labels}"
        )
    return checks, notes


def run(
    db: sa.Engine,
    reference: Reference,
    metadata: ModelMetadata,
    params: MonitorParams,
    *,
    now: float | None = None,
) -> Outcome:
    """Check the window that ends `now` (default: the current time), debounce, and store the run."""
    end = time.time() if now is None else now
    start = end - params.window_seconds
    window = read_window(db, start, end, metadata)
    checks, notes = judge(window, reference, metadata, params)
    alerts = debounce(checks, history(db, params.debounce.windows - 1), params.debounce)
    rows, labelled = len(window), int(window[TRUTH].notna().sum())
    row: dict[str, Any] = {
        "ts": end,
        "window_start": start,
        "window_end": end,
        "rows": len(window),
        "labelled": int(window[TRUTH].notna().sum()),
        "breaches": sorted({c.key for c in checks if c.breached}),
        "alerts": sorted({c.key for c in alerts}),
        "results": [c.to_dict() for c in checks],
    }
    with db.begin() as connection:
        run_id = connection.execute(store.monitor_runs.insert().values(**row)).inserted_primary_key
    return Outcome(
        window_start=start,
        window_end=end,
        rows=rows,
        labelled=labelled,
        checks=checks,
        alerts=alerts,
        notes=notes,
        run_id=int(run_id[0]) if run_id else None,
        window=window,
    )


def load_reference(train_csv: Path = TRAIN_CSV) -> tuple[Reference, ModelMetadata]:
    """The model that `make run` produced, the rows it was trained on and its labels for them."""
    trained = load()
    if not train_csv.exists():
        raise ModelError(f"{train_csv} not found: run `make run` (data + dvc repro) first")
    features, _ = trained.schema.read(train_csv)
    answers = predict(trained, features)
    predicted = labels(trained, answers) if trained.schema.classification else answers.tolist()
    return Reference(features=features, predicted=predicted), trained.metadata
