"""The model's input schema: which columns are numeric or categorical, how to read them, what labels exist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mltemplate.errors import Error
from mltemplate.metrics import Task, is_classification
from mltemplate.params import DataParams

ROW_ID = "__row_id__"
"""The prepared splits' column of each row's content id (prepare.row_ids); never a feature."""


class DataError(Error, ValueError):
    """A CSV does not match the schema that params.yaml describes."""


@dataclass(frozen=True)
class Schema:
    """Feature columns in CSV order, split by kind, plus the target, the task and (binary) the positive class."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    positive_class: str | None
    task: Task = "binary"

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @classmethod
    def from_columns(cls, columns: Sequence[str], p: DataParams) -> Schema:
        """Resolve params against a CSV header; raises DataError naming a missing or unexpected column."""
        present = [c for c in columns if c != ROW_ID]
        duplicated = sorted({c for c in present if present.count(c) > 1})
        if duplicated:
            raise DataError(f"column {duplicated[0]!r} appears more than once")
        # Dropped columns are checked by `prepare` against the raw CSV; prepared splits no longer hold them.
        wanted = [p.target, *(p.features or []), *p.categorical]
        missing = [c for c in dict.fromkeys(wanted) if c not in present]
        if missing:
            raise DataError(f"missing column {missing[0]!r} (columns present: {present})")
        if p.features is None:
            features = [c for c in present if c not in {p.target, *p.drop}]
        else:
            unexpected = [c for c in present if c not in {p.target, *p.features, *p.drop}]
            if unexpected:
                raise DataError(
                    f"unexpected column {unexpected[0]!r}: add it to data.features or data.drop in params.yaml"
                )
            features = [c for c in present if c in set(p.features)]
        if not features:
            raise DataError("no feature columns: the CSV holds only the target and dropped columns")
        categorical = set(p.categorical)
        return cls(
            numeric=tuple(c for c in features if c not in categorical),
            categorical=tuple(c for c in features if c in categorical),
            target=p.target,
            positive_class=p.positive_class,
            task=p.task,
        )

    @property
    def classification(self) -> bool:
        return is_classification(self.task)

    def dtypes(self) -> dict[str, Any]:
        """read_csv dtypes: labels and categories as text (object, NaN when missing), numbers (and a regression
        target) as float64."""
        target = object if self.classification else "float64"
        return {**{c: "float64" for c in self.numeric}, **{c: object for c in self.categorical}, self.target: target}

    def read(self, path: Path) -> tuple[pd.DataFrame, pd.Series]:
        """Read a prepared split as (features in schema order, labels as text or regression targets)."""
        frame = pd.read_csv(path, dtype=self.dtypes(), keep_default_na=True)
        target = frame[self.target]
        return frame[list(self.features)], target.astype(str) if self.classification else target.astype("float64")

    def to_dict(self) -> dict[str, Any]:
        raw = {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}
        if raw["task"] == "binary":
            # Written only when it is not the default: metadata.json of a binary model keeps its bytes.
            del raw["task"]
        return raw
