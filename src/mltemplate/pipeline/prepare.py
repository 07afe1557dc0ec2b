"""Stage `prepare`: read the raw CSV named in params.yaml, check it against the data contract and params.yaml,
write a train/test split (stratified for classification) and examples/predict.json (a held-out row, the service's
example request). Every row carries its content's id (schema.ROW_ID), so a comparison can tell which rows a model was
trained on whatever the split; the held-out split also keeps the CSV's other columns, as text (slice columns, and
the columns another model of the data may need)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mltemplate import atomic, contract
from mltemplate.params import DataParams, Params, SplitParams, load_params
from mltemplate.paths import EXAMPLE_FILE, TEST_CSV, TRAIN_CSV
from mltemplate.schema import ROW_ID, DataError, Schema


def read_raw(path: Path) -> pd.DataFrame:
    """Every cell as text, so validation can say which value in which column is wrong."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=True, skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (run `make data`)") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: not a valid CSV: {str(error).strip()}") from None


def validate(raw: pd.DataFrame, p: DataParams) -> tuple[pd.DataFrame, Schema]:
    """Typed frame (features + target) and its schema; raises DataError naming the offending column."""
    columns = [str(c) for c in raw.columns]
    absent = [c for c in p.drop if c not in columns]
    if absent:
        raise DataError(f"data.drop names column {absent[0]!r}, which the CSV does not have")
    schema = Schema.from_columns(columns, p)
    if raw.empty:
        raise DataError("no data rows: the CSV holds only a header")
    frame = raw[[*schema.features, schema.target]].copy()
    for column in schema.numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & ~np.isfinite(values.fillna(0.0))
        bad |= frame[column].notna() & values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"column {column!r}: value {frame[column].iloc[row]!r} on data row {row + 1} is not a finite number "
                f"(list the column in data.categorical if it holds categories)"
            )
        frame[column] = values.astype("float64")
    for column in schema.categorical:
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), np.nan)
    target = frame[schema.target]
    if target.isna().any():
        raise DataError(f"target column {schema.target!r}: {int(target.isna().sum())} rows have no value")
    if schema.classification:
        frame[schema.target] = _labels(target.astype(str).str.strip(), p)
    else:
        frame[schema.target] = _numbers(target, schema.target)
    return frame, schema


def _labels(labels: pd.Series, p: DataParams) -> pd.Series:
    classes = sorted(labels.unique())
    if len(classes) < 2:
        raise DataError(f"target column {p.target!r} has a single class {classes}; need two to train")
    if p.task == "binary" and len(classes) > 2:
        raise DataError(
            f"target column {p.target!r} has {len(classes)} classes {classes}; data.task is binary "
            "(set it to multiclass)"
        )
    if p.task == "binary" and p.positive_class not in classes:
        raise DataError(f"data.positive_class {p.positive_class!r} is not a value of {p.target!r}: {classes}")
    return labels


def _numbers(target: pd.Series, column: str) -> pd.Series:
    values = pd.to_numeric(target, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.fillna(0.0))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"target column {column!r}: value {target.iloc[row]!r} on data row {row + 1} is not a finite number "
            "(data.task is regression)"
        )
    return values.astype("float64")


def split(frame: pd.DataFrame, schema: Schema, p: SplitParams, *, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded split; stratified for classification, so both parts keep the class balance."""
    labels = frame[schema.target] if schema.classification else None
    if labels is not None:
        smallest = int(labels.value_counts().min())
        if smallest < 2:
            raise DataError(f"target column {schema.target!r}: a class has {smallest} row; stratified split needs 2")
    try:
        train, test = train_test_split(frame, test_size=p.test_size, random_state=seed, stratify=labels)
    except ValueError as error:
        raise DataError(f"split.test_size {p.test_size}: {error}") from None
    return train.sort_index(), test.sort_index()


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic.write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def example(test: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """The body of a POST /predict: the first held-out row with no missing value (else the first), features only.
    Written by the pipeline, so it always matches the schema the service serves."""
    rows = test[list(schema.features)]
    complete = rows.notna().all(axis=1).to_numpy()
    row = rows.iloc[int(np.argmax(complete))]
    record = {name: None if pd.isna(value) else value for name, value in row.items()}
    return {"records": [{k: float(v) if k in schema.numeric and v is not None else v for k, v in record.items()}]}


def row_ids(raw: pd.DataFrame) -> pd.Series:
    """Each row's id: 16 hex digits of a hash of its cells as the CSV spells them. The same content gets the same id
    in any version of the data and any split; two identical rows share one (a comparison then counts both seen)."""
    cells = raw.astype(object).where(raw.notna(), "").astype(str).to_numpy()
    ids = [hashlib.blake2b("\x1f".join(row).encode(), digest_size=8).hexdigest() for row in cells]
    return pd.Series(ids, index=raw.index, dtype=object)


def prepare(raw: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """Validated train and test splits with their rows' ids, and their schema; the CSV's other columns (dropped
    ones, slice columns that are not features) stay in the held-out split only, as text."""
    frame, schema = validate(raw, params.data)
    frame[ROW_ID] = row_ids(raw)
    for column in raw.columns:
        if column not in frame.columns:
            frame[column] = raw[column].astype(object)
    train, test = split(frame, schema, params.split, seed=params.seed)
    return train[[*schema.features, schema.target, ROW_ID]], test, schema


def main() -> None:
    params = load_params()
    raw = read_raw(params.data.raw)
    contract.check(raw, contract.read(), source=params.data.raw)
    train, test, schema = prepare(raw, params)
    write_csv(train, TRAIN_CSV)
    write_csv(test, TEST_CSV)
    atomic.write_text(EXAMPLE_FILE, json.dumps(example(test, schema), indent=2) + "\n")
    print(f"prepare: {len(train)} train / {len(test)} test rows, {len(schema.features)} features -> {TRAIN_CSV.parent}")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
