"""The data contract (data/contract.yaml): the columns the raw CSV must have, their types and, for categories, the
values seen so far. Written when data is tracked (`python -m mltemplate.pipeline.data track|contract`), checked by
`prepare` on every run, whatever `data.features` says: a column that disappears, appears or changes type fails
the stage by name instead of quietly changing the model and the service's request schema."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from mltemplate import atomic
from mltemplate.paths import CONTRACT_FILE
from mltemplate.schema import DataError

Kind = Literal["number", "category"]
MAX_VALUES = 50
"""Categories with more distinct values than this (ids, free text) are recorded without their values."""
ACCEPT = "python -m mltemplate.pipeline.data contract"
"""The one command that accepts the CSV's current columns as the contract (`make contract`)."""


@dataclass(frozen=True)
class Column:
    kind: Kind
    values: tuple[str, ...] | None = None
    """Known values of a category, sorted; None for numbers and for categories with many values."""


@dataclass(frozen=True)
class Contract:
    columns: dict[str, Column] = field(default_factory=dict)

    def to_yaml(self, source: Path) -> str:
        columns: dict[str, Any] = {}
        for name, column in self.columns.items():
            entry: dict[str, Any] = {"type": column.kind}
            if column.values is not None:
                entry["values"] = list(column.values)
            columns[name] = entry
        header = (
            f"# The data contract of {source.as_posix()}: the columns `prepare` expects. Written by\n"
            f"# `{ACCEPT}` (or `... track`); a change to it is a deliberate change of the data.\n"
        )
        return header + yaml.safe_dump(
            {"columns": columns}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120
        )


def _numbers(values: pd.Series) -> pd.Series:
    """Each present value as a float, NaN where it is not a finite number."""
    parsed = pd.to_numeric(values, errors="coerce")
    return parsed.where(np.isfinite(parsed.fillna(np.inf)))


def infer(raw: pd.DataFrame) -> Contract:
    """The contract a CSV read as text satisfies: a column is a number when every present value is a finite number."""
    columns: dict[str, Column] = {}
    for name in raw.columns:
        values = raw[name].dropna().astype(str).str.strip()
        if len(values) and _numbers(values).notna().all():
            columns[str(name)] = Column("number")
            continue
        distinct = sorted(set(values))
        columns[str(name)] = Column("category", tuple(distinct) if len(distinct) <= MAX_VALUES else None)
    return Contract(columns)


def parse(text: str, *, source: Path = CONTRACT_FILE) -> Contract:
    try:
        document = yaml.safe_load(text) or {}
        raw_columns: Mapping[str, Any] = document["columns"]
        columns = {}
        for name, spec in raw_columns.items():
            kind = spec["type"]
            if kind not in ("number", "category"):
                raise ValueError(f"column {name!r}: type {kind!r} is not number or category")
            values = spec.get("values")
            columns[str(name)] = Column(kind, tuple(str(v) for v in values) if values is not None else None)
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as error:
        raise DataError(f"{source}: not a data contract ({error}); rewrite it with `{ACCEPT}`") from None
    return Contract(columns)


def read(path: Path = CONTRACT_FILE) -> Contract:
    try:
        return parse(path.read_text(encoding="utf-8"), source=path)
    except FileNotFoundError:
        raise DataError(f"{path} not found: write it from the tracked CSV with `{ACCEPT}`") from None


def write(contract: Contract, *, source: Path, path: Path = CONTRACT_FILE) -> None:
    atomic.write_text(path, contract.to_yaml(source))


def differences(expected: Contract, actual: Contract) -> list[str]:
    """What changed between two contracts, one line per column: lost, added, retyped, new category values."""
    changes = [f"lost column {name!r}" for name in expected.columns if name not in actual.columns]
    changes += [f"added column {name!r}" for name in actual.columns if name not in expected.columns]
    for name, was in expected.columns.items():
        now = actual.columns.get(name)
        if now is None:
            continue
        if now.kind != was.kind:
            changes.append(f"column {name!r} was {was.kind}, is now {now.kind}")
        elif was.values is not None and now.values is not None and set(now.values) - set(was.values):
            changes.append(f"column {name!r} has new values {sorted(set(now.values) - set(was.values))}")
    return changes


def check(raw: pd.DataFrame, expected: Contract, *, source: Path) -> None:
    """Fail naming every lost, added or retyped column of `raw` (read as text); new category values are allowed
    (`prepare` learns them, the service scores unseen ones as none of the known)."""
    present = [str(c) for c in raw.columns]
    problems = [f"lost column {name!r}" for name in expected.columns if name not in present]
    problems += [f"added column {name!r}" for name in present if name not in expected.columns]
    for name, column in expected.columns.items():
        if name not in present or column.kind != "number":
            continue
        values = raw[name]
        bad = values.notna() & _numbers(values.astype(str).str.strip()).isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            problems.append(
                f"column {name!r}: value {values.iloc[row]!r} on data row {row + 1} is not a finite number, "
                f"but the contract records the column as numbers"
            )
    if problems:
        raise DataError(
            f"{source} does not match {CONTRACT_FILE}: {'; '.join(problems)}. "
            f"Fix the data, or accept the change with `{ACCEPT}` (`make contract`) and commit the contract"
        )


def breaches(raw: pd.DataFrame, expected: Contract) -> pd.Series:
    """Per row of `raw` (read as text, holding the contract's columns), whether it breaks the contract: a value that
    is not a finite number in a number column, or a category the contract does not know (when it lists its values).
    New rows from outside (production) are held to the categories seen so far; `check` lets a tracked CSV add some."""
    broken = pd.Series(False, index=raw.index)
    for name, column in expected.columns.items():
        values = raw[name]
        present = values.notna() & (values.astype(str).str.strip() != "")
        if column.kind == "number":
            broken |= present & _numbers(values.astype(str).str.strip()).isna()
        elif column.values is not None:
            broken |= present & ~values.astype(str).str.strip().isin(column.values)
    return broken
