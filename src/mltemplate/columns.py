"""Columnar input checked against the model's input schema, the rules POST /predict applies per record: every
feature present, numbers finite (null only where training had missing values), categories text. Columns in, a
Block out (the frame `predict.to_frame` takes, once per model call), and every bad value by feature and row; reads
and writes no file."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mltemplate.schema import Schema

MAX_CATEGORY_CHARS = 1000
"""As POST /predict's records (serving/payloads.py): longer text is refused."""
SHOWN = 5
"""Bad values quoted per problem."""

_NONE = type(None)
_NUMBERS = frozenset({float, int})
Column = Sequence[Any] | np.ndarray | pd.Series
"""One feature's values: a list (from JSON), a numpy array or a pandas Series."""


@dataclass(frozen=True)
class Problem:
    """Values of one feature the model cannot take: at `rows` (positions in the input), why, and a few of them."""

    feature: str
    rows: np.ndarray
    reason: str
    values: tuple[Any, ...] = ()

    def describe(self) -> str:
        shown = ", ".join(f"row {row}: {value!r}" for row, value in zip(self.rows, self.values, strict=False))
        more = f" (and {len(self.rows) - len(self.values)} more rows)" if len(self.rows) > len(self.values) else ""
        return f"{self.feature!r} {self.reason} ({shown}{more})"


class ColumnsError(ValueError):
    """Input columns that cannot make a frame: `problems` name each feature and its bad rows."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.describe() for p in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Block:
    """Checked rows as two arrays in schema order: the numbers (float64, NaN for null) and the categories (object,
    NaN for null). Merged by concatenation and made a frame once per model call: no per-record objects."""

    schema: Schema
    numeric: np.ndarray
    categorical: np.ndarray

    def __len__(self) -> int:
        return len(self.numeric)

    def frame(self) -> pd.DataFrame:
        """The frame `predict.to_frame` would build for these rows (and takes as it is)."""
        frame = pd.DataFrame(self.numeric, columns=list(self.schema.numeric))
        for i, name in enumerate(self.schema.categorical):
            frame[name] = pd.Series(self.categorical[:, i], dtype=object)  # not pandas' string dtype
        return frame

    def take(self, rows: np.ndarray) -> Block:
        return Block(self.schema, self.numeric[rows], self.categorical[rows])

    @staticmethod
    def concat(blocks: Sequence[Block]) -> Block:
        if len(blocks) == 1:
            return blocks[0]
        numeric = np.concatenate([b.numeric for b in blocks])
        return Block(blocks[0].schema, numeric, np.concatenate([b.categorical for b in blocks]))


def _problem(feature: str, bad: np.ndarray, reason: str, values: Column) -> Problem:
    rows = np.flatnonzero(bad)
    shown = tuple(_item(values[int(row)]) for row in rows[:SHOWN])
    return Problem(feature, rows, reason, shown)


def _item(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _as_list(values: Column) -> list[Any] | None:
    """Python objects (lists, object arrays) as a list; None for a typed array."""
    if isinstance(values, list):
        return values
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        return values.tolist() if values.dtype == object else None
    return list(values)


def _numbers(name: str, values: Column, *, nullable: bool) -> tuple[np.ndarray, list[Problem]]:
    """float64 values (NaN for null and for bad values) and what is wrong with them."""
    problems: list[Problem] = []
    wrong = np.zeros(len(values), dtype=bool)
    listed = _as_list(values)
    if listed is not None:
        if not set(map(type, listed)) <= _NUMBERS | {_NONE}:  # a null is judged below, with NaN
            wrong = np.array([type(v) not in _NUMBERS and v is not None for v in listed], dtype=bool)
            problems.append(_problem(name, wrong, "is not a number", listed))
            listed = [None if bad else v for v, bad in zip(listed, wrong, strict=True)]
        try:
            array: np.ndarray = np.array(listed, dtype=np.float64)
        except OverflowError:  # an integer beyond float range
            huge = np.array([isinstance(v, int) and abs(v) > 2**1023 for v in listed], dtype=bool)
            problems.append(_problem(name, huge, "is beyond float64 range", listed))
            wrong |= huge
            array = np.array([None if bad else v for v, bad in zip(listed, huge, strict=True)], dtype=np.float64)
    elif isinstance(values, np.ndarray) and values.dtype.kind in "fiu":  # decoded tensors: no Series per column
        array = values.astype(np.float64, copy=False)
    else:
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        if series.dtype.kind not in "fiu":  # bool, text, dates: not numbers
            bad = np.ones(len(series), dtype=bool)
            return np.full(len(series), np.nan), [_problem(name, bad, f"holds {series.dtype}, not numbers", series)]
        array = series.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(array) & ~wrong
    if not nullable and missing.any():
        problems.append(_problem(name, missing, "is null, which training never saw for it", values))
    infinite = np.isinf(array)
    if infinite.any():
        problems.append(_problem(name, infinite, "is not a finite number", values))
    return array, problems


def _categories(name: str, values: Column, *, nullable: bool) -> tuple[np.ndarray, list[Problem]]:
    """object values (NaN for null) and what is wrong with them."""
    listed = _as_list(values)
    if listed is None:  # a typed array: text ('U'), or not text at all
        array = np.asarray(values)
        if array.dtype.kind != "U":
            bad = np.ones(len(array), dtype=bool)
            return np.full(len(array), np.nan, dtype=object), [
                _problem(name, bad, f"holds {array.dtype}, not text", array)
            ]
        listed = array.tolist()
    missing = np.array([v is None or (isinstance(v, float) and v != v) for v in listed], dtype=bool)
    text = np.array([isinstance(v, str) for v in listed], dtype=bool)
    problems = []
    if (~text & ~missing).any():
        problems.append(_problem(name, ~text & ~missing, "is not text", listed))
    if not nullable and missing.any():
        problems.append(_problem(name, missing, "is null, which training never saw for it", listed))
    long = np.array([isinstance(v, str) and len(v) > MAX_CATEGORY_CHARS for v in listed], dtype=bool)
    if long.any():
        problems.append(_problem(name, long, f"is longer than {MAX_CATEGORY_CHARS} characters", listed))
    array = np.array(listed, dtype=object)
    array[missing] = np.nan
    return array, problems


def check(
    columns: Mapping[str, Column],
    schema: Schema,
    *,
    nullable: Collection[str] = (),
    extra: str = "refuse",
) -> tuple[Block, list[Problem]]:
    """The rows of `columns` as a Block (a bad value is null there: drop `bad_rows(problems)`), and every problem of
    its values. Raises ColumnsError (naming them) for missing features, columns of unequal length,
    and other columns unless `extra="ignore"`."""
    missing = [name for name in schema.features if name not in columns]
    others = [str(name) for name in columns if name not in schema.features]
    structural = [Problem(name, np.empty(0, dtype=int), "is missing: the model takes it") for name in missing]
    if others and extra != "ignore":
        structural += [Problem(name, np.empty(0, dtype=int), "is not a feature of the model") for name in others]
    if structural:
        raise ColumnsError(structural)
    first, expected = schema.features[0], len(columns[schema.features[0]])
    uneven = [name for name in schema.features if len(columns[name]) != expected]
    if uneven:
        given = len(columns[uneven[0]])
        raise ColumnsError([Problem(uneven[0], np.empty(0, dtype=int), f"has {given} values, {first!r} {expected}")])
    numbers: list[np.ndarray] = []
    problems: list[Problem] = []
    for name in schema.numeric:
        array, found = _numbers(name, columns[name], nullable=name in nullable)
        numbers.append(array)
        problems += found
    categories: list[np.ndarray] = []
    for name in schema.categorical:
        values, found = _categories(name, columns[name], nullable=name in nullable)
        categories.append(values)
        problems += found
    numeric = np.column_stack(numbers) if numbers else np.empty((expected, 0))
    categorical = np.column_stack(categories) if categories else np.empty((expected, 0), dtype=object)
    return Block(schema, numeric.astype(np.float64, copy=False), categorical), problems


def checked(columns: Mapping[str, Column], schema: Schema, *, nullable: Collection[str] = ()) -> Block:
    """check's block, or ColumnsError naming every problem (the service's form: nothing is scored in part)."""
    block, problems = check(columns, schema, nullable=nullable)
    if problems:
        raise ColumnsError(problems)
    return block


def matrix_block(matrix: np.ndarray, schema: Schema, *, nullable: Collection[str] = ()) -> Block:
    """One float64 array (rows x numeric features, schema order) of an all-numeric model, checked: NaN only in
    nullable features, no infinity."""
    if schema.categorical:
        raise ValueError(f"a single numeric block needs an all-numeric model; this one has {list(schema.categorical)}")
    if not np.isfinite(matrix).all():
        return checked({name: matrix[:, i] for i, name in enumerate(schema.numeric)}, schema, nullable=nullable)
    return Block(schema, matrix, np.empty((len(matrix), 0), dtype=object))


def read_numbers(text: pd.Series) -> pd.Series:
    """A column of text cells (a CSV's) as numbers where they are numbers; a cell that is not stays text, for check
    to name. Columns pandas already read as numbers are returned as they are."""
    if text.dtype.kind in "fiub":
        return text
    parsed = pd.to_numeric(text, errors="coerce")
    unread = parsed.isna() & text.notna()
    if not unread.any():
        return parsed
    mixed = parsed.astype(object)
    mixed[unread] = text[unread]
    return mixed


def bad_rows(problems: Sequence[Problem]) -> np.ndarray:
    """The sorted positions of every row that has a problem."""
    if not problems:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate([p.rows for p in problems]))
