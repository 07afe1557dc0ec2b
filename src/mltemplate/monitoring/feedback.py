"""Ground truth for logged predictions: the labels of a POST /feedback body or of a CSV (`make feedback
FILE=labels.csv`), checked item by item, and which of them name a record the service answered (`resolve`). A label
names a request id and, for a request that held several records, the record's `position` (0-based, as in the
response's `predictions`). Storing them is labels.py's."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltemplate.errors import Error

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
"""What a request id may be (the service's own are signed hex, serving/ids.py); a client's X-Request-ID too."""
SUBMISSION_ID = REQUEST_ID
MAX_ITEMS = 10_000
CSV_COLUMNS = ("request_id", "label")
BODY_KEYS = {"labels", "submission_id", "all_or_nothing"}


@dataclass(frozen=True)
class Label:
    request_id: str
    position: int | None
    label: str


@dataclass(frozen=True)
class Resolved:
    """A label of a record the service answered: its request, the record's position in it, the label."""

    request_id: str
    position: int
    label: str


@dataclass(frozen=True)
class Submission:
    """One call's labels; `submission_id` is the client's, when it gave one; `all_or_nothing`: store no label
    unless every one names a record the service answered."""

    labels: list[Label]
    submission_id: str | None = None
    all_or_nothing: bool = False

    def key(self) -> str:
        """What makes a re-sent submission the same one: the client's id, else a digest of its labels (so sending
        the same labels again stores nothing twice)."""
        if self.submission_id is not None:
            return self.submission_id
        items = sorted(
            (label.request_id, -1 if label.position is None else label.position, label.label) for label in self.labels
        )
        digest = hashlib.sha256(json.dumps(items, separators=(",", ":")).encode()).hexdigest()
        return f"auto-{digest[:40]}"


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


def parse(body: Any, classes: Sequence[str] | None) -> Submission:
    """The submission of a POST /feedback body ({"labels": [{"request_id", "label", "position"?}, ...],
    "submission_id"?, "all_or_nothing"?}); FeedbackError lists every item whose shape, id or label is wrong (labels
    must be one of the model's `classes`, or finite numbers when `classes` is None: a regression model)."""
    if not isinstance(body, dict) or "labels" not in body or set(body) - BODY_KEYS:
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        return _refuse(-1, "body", f'expected {{"labels": [...], "submission_id"?, "all_or_nothing"?}}, got {keys}')
    submission_id, all_or_nothing = body.get("submission_id"), body.get("all_or_nothing", False)
    if submission_id is not None and (not isinstance(submission_id, str) or not SUBMISSION_ID.match(submission_id)):
        return _refuse(-1, "submission_id", f"{submission_id!r} is not 1-64 characters of A-Za-z0-9._:-")
    if not isinstance(all_or_nothing, bool):
        return _refuse(-1, "all_or_nothing", f"expected true or false, got {all_or_nothing!r}")
    items = body["labels"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        return _refuse(-1, "labels", f"expected a list of 1..{MAX_ITEMS} items")
    labels, problems = [], []
    for index, item in enumerate(items):
        found = _item(index, item, classes, prefix=f"labels.{index}")
        if isinstance(found, Problem):
            problems.append(found)
        else:
            labels.append(found)
    if problems:
        raise FeedbackError(problems)
    return Submission(labels, submission_id, all_or_nothing)


def _refuse(index: int, field: str, error: str) -> Submission:
    raise FeedbackError([Problem(index, field, error)])


def _item(index: int, item: Any, classes: Sequence[str] | None, *, prefix: str) -> Label | Problem:
    if not isinstance(item, dict):
        return Problem(index, prefix, f"expected an object, got {type(item).__name__}")
    unknown = sorted(set(item) - {"request_id", "label", "position"})
    if unknown:
        return Problem(index, f"{prefix}.{unknown[0]}", "unknown field; allowed: request_id, label, position")
    request_id, label, position = item.get("request_id"), item.get("label"), item.get("position")
    if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
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


def resolve(
    labels: Sequence[Label],
    records: Mapping[str, int],
    *,
    unchecked: Mapping[str, str] | None = None,
    where: str = "labels",
    first_line: int | None = None,
) -> tuple[list[Resolved], list[Problem]]:
    """Which labels name a record the service answered: `records` holds, per request id known to be answered, how
    many records it held; `unchecked` the ids that could not be looked up, with why. The others are unknown. A record
    labelled twice in one call keeps its first label. Problems are named `labels.<index>.<field>`, or
    `<file>:<line>.<field>` for a CSV whose first label is on `first_line`."""
    accepted: list[Resolved] = []
    problems: list[Problem] = []
    seen: set[tuple[str, int]] = set()
    for index, label in enumerate(labels):
        prefix = f"{where}.{index}" if first_line is None else f"{where}:{first_line + index}"
        count = records.get(label.request_id)
        if count is None:
            why = (unchecked or {}).get(label.request_id) or f"unknown request id {label.request_id!r}"
            problems.append(Problem(index, f"{prefix}.request_id", why))
            continue
        position = label.position
        if position is None and count > 1:
            message = f"request {label.request_id!r} held {count} records: say which with `position` (0-based)"
            problems.append(Problem(index, f"{prefix}.position", message))
            continue
        position = position or 0
        if position >= count:
            message = f"request {label.request_id!r} held {count} record(s); position {position} does not exist"
            problems.append(Problem(index, f"{prefix}.position", message))
            continue
        if (label.request_id, position) in seen:
            problems.append(Problem(index, prefix, f"record {label.request_id!r}/{position} is labelled twice"))
            continue
        seen.add((label.request_id, position))
        accepted.append(Resolved(label.request_id, position, label.label))
    return accepted, problems
