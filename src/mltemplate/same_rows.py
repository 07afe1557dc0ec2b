"""Which held-out rows two models are compared on, and the comparison of two checkouts' models on them: the
candidate's held-out rows that neither model was trained on, identified by their ids and content (a changed seed,
split, data set or feature list is handled), scored by each model through its own schema (mltemplate.comparison
does the rest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mltemplate.comparison import MIN_ROWS, Comparison, ComparisonError, Scored, compare, unavailable
from mltemplate.model import ModelError, load
from mltemplate.paths import MODEL_FILE, MODEL_METADATA, TEST_CSV, TRAIN_CSV
from mltemplate.predict import predict, to_frame
from mltemplate.schema import ROW_ID

MISSING = np.uint64(0)
"""The hash of a missing cell, however a split spelled it."""


def _cell_hashes(column: pd.Series) -> np.ndarray:
    """A hash per cell that is the same for the same value however a split spelled it: numbers by their value (the
    raw CSV's `3` and a prepared split's `3.0`), other text stripped, missing cells alike."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        hashes = pd.util.hash_array(column.to_numpy(dtype=np.float64))
        hashes[column.isna().to_numpy()] = MISSING
        return hashes
    codes, values = pd.factorize(column)  # each distinct text once: categories cost their count, not the rows'
    text = pd.Series(values, dtype=object).astype(str).str.strip()
    distinct = pd.util.hash_array(text.to_numpy(dtype=object))
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    numeric = ~np.isnan(numbers)
    distinct[numeric] = pd.util.hash_array(numbers[numeric])
    return np.where(codes < 0, MISSING, distinct[np.maximum(codes, 0)])


def row_keys(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A 64-bit key of each row's cells in `columns`: rows are the same rows when their content is, wherever a
    split put them and however a split spelled a number."""
    cells = pd.DataFrame({column: _cell_hashes(frame[column]) for column in columns}, index=frame.index)
    return pd.util.hash_pandas_object(cells, index=False).to_numpy()


@dataclass(frozen=True)
class Trained:
    """What one model was trained on (`train`) and the held-out rows prepared with it (`test`): together, every row
    of the data version it saw, by id."""

    train: pd.DataFrame
    test: pd.DataFrame | None = None


def _ids(frame: pd.DataFrame | None) -> np.ndarray:
    """The split's row ids as 64-bit hashes (numpy sorts and searches those fast, object arrays pairwise)."""
    if frame is None or ROW_ID not in frame.columns:
        return np.empty(0, dtype=np.uint64)
    return pd.util.hash_array(frame[ROW_ID].to_numpy(dtype=object))


def shared_rows(candidate_test: pd.DataFrame, *trained_on: Trained) -> np.ndarray:
    """The positions of the candidate's held-out rows that no model of `trained_on` was trained on.
    A row's content id (schema.ROW_ID, a hash of the raw row) decides when that model's data version holds the id:
    the same raw row, trained on or held out. Any other row (new, or its id changed because the CSV gained, lost or
    moved a column) counts as seen when its cells in the columns the two splits share match a training row's: a row
    of unknown origin is never taken for unseen. Content alone would not do: a model trained on one column shares
    that column's few values with every row."""
    seen = np.zeros(len(candidate_test), dtype=bool)
    ids = _ids(candidate_test)
    for model in trained_on:
        trained = known = np.zeros(len(candidate_test), dtype=bool)
        if len(ids) and ROW_ID in model.train.columns:  # ids it was not trained with prove nothing
            trained = np.isin(ids, _ids(model.train))
            known = trained | np.isin(ids, _ids(model.test))
        seen |= trained
        common = [c for c in model.train.columns if c != ROW_ID and c in candidate_test.columns]
        if common and not known.all():
            seen |= ~known & np.isin(row_keys(candidate_test, common), row_keys(model.train, common))
    return np.flatnonzero(~seen)


def read_split(path: Path) -> pd.DataFrame:
    """A prepared split with the parser's own types (numbers as numbers), the row ids as text."""
    return pd.read_csv(path, dtype={ROW_ID: str}, low_memory=False)


def compare_models(base_root: Path, candidate_root: Path, *, slices: Sequence[str] = (), seed: int = 0) -> Comparison:
    """The model under `base_root` against the one under `candidate_root` (each a checkout holding models/ and
    data/prepared/) on the candidate's held-out rows that neither was trained on, per group of each `slices`
    column those rows hold; a comparison with a reason (and no numbers) when the base cannot score them."""
    try:
        base = load(model_path=base_root / MODEL_FILE, metadata_path=base_root / MODEL_METADATA)
        candidate = load(model_path=candidate_root / MODEL_FILE, metadata_path=candidate_root / MODEL_METADATA)
    except ModelError as error:
        return unavailable(str(error))
    b, c = base.schema, candidate.schema
    if b.task != c.task or b.positive_class != c.positive_class or b.target != c.target:
        return unavailable(
            f"the base models {b.target!r} as a {b.task} task (positive class {b.positive_class!r}), the candidate "
            f"{c.target!r} as a {c.task} task (positive class {c.positive_class!r})"
        )
    test = read_split(candidate_root / TEST_CSV)
    base_test = read_split(base_root / TEST_CSV) if (base_root / TEST_CSV).is_file() else None
    base_model = Trained(read_split(base_root / TRAIN_CSV), base_test)
    rows = shared_rows(test, base_model, Trained(read_split(candidate_root / TRAIN_CSV), test))
    if len(rows) < MIN_ROWS:
        return unavailable(f"only {len(rows)} held-out rows neither model was trained on; {MIN_ROWS} are needed")
    missing = [name for name in b.features if name not in test.columns]
    if missing:
        return unavailable(f"the candidate's held-out rows have no column {missing[0]!r}, which the base model needs")
    typed = pd.read_csv(candidate_root / TEST_CSV, dtype=str, keep_default_na=True).iloc[rows]
    for name in b.numeric:
        cells = typed[name].dropna()
        text = cells[pd.to_numeric(cells, errors="coerce").isna()]
        if len(text):
            return unavailable(
                f"the base model reads column {name!r} as numbers; the candidate's rows hold {text.iloc[0]!r}"
            )
    try:
        base_rows = to_frame(typed[list(b.features)].reset_index(drop=True), b)
    except (TypeError, ValueError) as error:
        return unavailable(f"the base model cannot read the candidate's held-out rows: {error}")
    features, labels = c.read(candidate_root / TEST_CSV)
    candidate_rows = features.iloc[rows].reset_index(drop=True)
    actual = labels.iloc[rows].to_numpy()
    present = [column for column in dict.fromkeys(slices) if column in test.columns]
    groups: pd.DataFrame | None = None
    if present:  # as the CSV spells them, like evaluate's groups
        spelled = pd.read_csv(candidate_root / TEST_CSV, dtype=str, keep_default_na=False, usecols=present)
        groups = spelled[present].iloc[rows].replace("", None).reset_index(drop=True)
    try:
        return compare(
            c.task,
            actual,
            Scored(predict(base, base_rows), tuple(base.classes)),
            Scored(predict(candidate, candidate_rows), tuple(candidate.classes)),
            c.positive_class,
            seed=seed,
            groups=groups,
        )
    except ComparisonError as error:
        return unavailable(str(error))
