"""Ground truth for logged predictions: validate labels sent to POST /feedback or imported from a CSV
(`make feedback FILE=labels.csv`), and store them all or none. A label names a request id and, for a request that
held several records, the record's `position` (0-based, as in the response's `predictions`)."""

from __future__ import annotations

import csv
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mltemplate.errors import Error
from mltemplate.monitoring import store

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""What a request id may be (whole: fullmatch, so "id\\n" is not one): the service's own are 32 hex digits; a client's
X-Request-ID must fit this too."""
MAX_ITEMS = 10_000
CSV_COLUMNS = ("request_id", "label")


@dataclass(frozen=True)
class Label:
    request_id: str
    position: int | None
    label: str


@dataclass(frozen=True)
class Problem:
    """What is wrong with one item: its index in the body (or line in the CSV), the field, and why."""

    index: int
    field: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "error": self.error}


class FeedbackError(Error, ValueError):
    """Some labels were refused; none were stored."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first.field}: {first.error}{more}; nothing was stored")


def parse(body: Any, classes: Sequence[str] | None) -> list[Label]:
    """The labels of a POST /feedback body ({"labels": [{"request_id", "label", "position"?}, ...]}); FeedbackError
    lists every item whose shape, id or label is wrong (labels must be one of the model's `classes`, or finite
    numbers when `classes` is None: a regression model)."""
    if not isinstance(body, dict) or set(body) != {"labels"}:
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise FeedbackError([Problem(-1, "body", f'expected {{"labels": [...]}}, got {keys}')])
    items = body["labels"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise FeedbackError([Problem(-1, "labels", f"expected a list of 1..{MAX_ITEMS} items")])
    labels, problems = [], []
    for index, item in enumerate(items):
        found = _item(index, item, classes, prefix=f"labels.{index}")
        if isinstance(found, Problem):
            problems.append(found)
        else:
            labels.append(found)
    if problems:
        raise FeedbackError(problems)
    return labels


def _item(index: int, item: Any, classes: Sequence[str] | None, *, prefix: str) -> Label | Problem:
    if not isinstance(item, dict):
        return Problem(index, prefix, f"expected an object, got {type(item).__name__}")
    unknown = sorted(set(item) - {"request_id", "label", "position"})
    if unknown:
        return Problem(index, f"{prefix}.{unknown[0]}", "unknown field; allowed: request_id, label, position")
    request_id, label, position = item.get("request_id"), item.get("label"), item.get("position")
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        return Problem(index, f"{prefix}.request_id", f"{request_id!r} is not a request id (1-64 of A-Za-z0-9._:-)")
    if position is not None and (not isinstance(position, int) or isinstance(position, bool) or position < 0):
        return Problem(index, f"{prefix}.position", f"{position!r} is not a record index (an integer >= 0)")
    if classes is None:
        value = _number(label)
        if value is None:
            return Problem(index, f"{prefix}.label", f"{label!r} is not a finite number (the model predicts numbers)")
        return Label(request_id, position, repr(value))
    if isinstance(label, int) and not isinstance(label, bool):
        label = str(label)  # labels are text everywhere (the CSV's "1" is the class "1")
    if not isinstance(label, str) or label not in classes:
        return Problem(index, f"{prefix}.label", f"{label!r} is not one of the model's classes {list(classes)}")
    return Label(request_id, position, label)


def _number(label: Any) -> float | None:
    """A regression label: a JSON number, or text that reads as one (a CSV cell); stored as text like class labels."""
    if isinstance(label, bool) or not isinstance(label, int | float | str):
        return None
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_csv(path: Path, classes: Sequence[str] | None) -> list[Label]:
    """Labels from a CSV with columns request_id,label (and optionally position); problems name the line."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise FeedbackError([Problem(1, f"{path}: column {missing[0]!r}", f"missing (header: {header})")])
            extra = sorted(set(header) - {*CSV_COLUMNS, "position"})
            if extra:
                raise FeedbackError(
                    [Problem(1, f"{path}: column {extra[0]!r}", "unknown; allowed: request_id, label, position")]
                )
            rows = list(reader)
    except FileNotFoundError:
        raise FeedbackError([Problem(0, str(path), "file not found")]) from None
    labels, problems = [], []
    for line, row in enumerate(rows, start=2):
        item: dict[str, Any] = {"request_id": row["request_id"], "label": row["label"]}
        if row.get("position") not in (None, ""):
            raw = row["position"] or ""
            item["position"] = int(raw) if raw.isdigit() else raw
        found = _item(line, item, classes, prefix=f"{path}:{line}")
        if isinstance(found, Problem):
            problems.append(found)
        else:
            labels.append(found)
    if not rows:
        problems.append(Problem(2, str(path), "no labels (the file holds only a header)"))
    if problems:
        raise FeedbackError(problems)
    return labels


def store_labels(
    db: sa.Engine, labels: Sequence[Label], *, where: str = "labels", first_line: int | None = None
) -> int:
    """Check every label against the log (the request exists, the position is one of its records, no record is
    labelled twice in one call), then store all of them in one transaction, replacing earlier labels of the same
    records; FeedbackError (nothing stored) otherwise. Returns how many were stored. Problems are named
    `labels.<index>.<field>`, or `<file>:<line>.<field>` when the labels came from a CSV starting at `first_line`."""
    now = time.time()
    with db.begin() as connection:
        counts = store.request_positions(connection, (label.request_id for label in labels))
        problems, rows, seen = [], [], set()
        for index, label in enumerate(labels):
            prefix = f"{where}.{index}" if first_line is None else f"{where}:{first_line + index}"
            records = counts.get(label.request_id)
            if records is None:
                problems.append(Problem(index, f"{prefix}.request_id", f"unknown request id {label.request_id!r}"))
                continue
            position = label.position
            if position is None:
                if records > 1:
                    problems.append(
                        Problem(
                            index,
                            f"{prefix}.position",
                            f"request {label.request_id!r} held {records} records: say which with `position` (0-based)",
                        )
                    )
                    continue
                position = 0
            if position >= records:
                problems.append(
                    Problem(
                        index,
                        f"{prefix}.position",
                        f"request {label.request_id!r} held {records} record(s); position {position} does not exist",
                    )
                )
                continue
            if (label.request_id, position) in seen:
                problems.append(Problem(index, prefix, f"record {label.request_id!r}/{position} is labelled twice"))
                continue
            seen.add((label.request_id, position))
            rows.append({"request_id": label.request_id, "position": position, "label": label.label, "ts": now})
        if problems:
            raise FeedbackError(problems)
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            keys = [(row["request_id"], row["position"]) for row in chunk]
            connection.execute(
                store.feedback.delete().where(
                    sa.tuple_(store.feedback.c.request_id, store.feedback.c.position).in_(keys)
                )
            )
            connection.execute(store.feedback.insert(), chunk)
    return len(rows)
