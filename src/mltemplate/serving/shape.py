"""Why a body cannot be a prediction request, found from its bytes alone: numpy finds the JSON structure (brackets,
braces, colons and commas outside strings) and counts, per record, what a request of this schema may hold. No
Python object is built per value, so a body of a million keys or of nested lists is refused in milliseconds, where
parsing it and listing its errors took gigabytes and seconds (payloads.py parses only bodies that pass)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

QUOTE, BACKSLASH = ord('"'), ord("\\")
OPEN_OBJECT, CLOSE_OBJECT, OPEN_LIST, CLOSE_LIST = (ord(c) for c in "{}[]")
COLON, COMMA = ord(":"), ord(",")
LOWER = 0x20  # `[` | 0x20 is `{` and `]` | 0x20 is `}`: one comparison finds both kinds of bracket
# Depths, counted after an opening bracket: the body's object is 1, the records list 2, a record 3.
BODY, RECORDS, RECORD = 1, 2, 3


@dataclass(frozen=True)
class Problem:
    """The field at fault (`records.3`, `records`, `body`) and what is wrong, without the client's values."""

    field: str
    reason: str


def _escaped(data: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Which quotes are escaped: those right after an odd run of backslashes."""
    slashes = np.flatnonzero(data == BACKSLASH)
    if not slashes.size:
        return np.zeros(quotes.size, dtype=bool)
    starts = np.flatnonzero(np.diff(slashes, prepend=-2) != 1)  # where each run of consecutive backslashes begins
    ends = np.append(slashes[starts[1:] - 1], slashes[-1])
    lengths = np.diff(np.append(starts, slashes.size))
    run = np.minimum(np.searchsorted(ends, quotes - 1), ends.size - 1)
    escaped: np.ndarray = (ends[run] == quotes - 1) & (lengths[run] % 2 == 1)
    return escaped


def _structure(data: np.ndarray) -> np.ndarray | None:
    """The structural characters outside strings, in order (no positions: a million of them would cost 8 MB
    each); None when a string is not closed."""
    low = data | LOWER
    quote = data == QUOTE
    events = (low == OPEN_OBJECT) | (low == CLOSE_OBJECT) | (data == COLON) | (data == COMMA) | quote
    kinds = data[events]
    delimits = kinds == QUOTE
    if np.any(data == BACKSLASH):  # rare in numbers and feature names: only then find which quotes are escaped
        escaped = _escaped(data, np.flatnonzero(quote))
        delimits[np.flatnonzero(delimits)[escaped]] = False
    inside = np.cumsum(delimits, dtype=np.int32) & 1  # after each event: within a string
    if inside.size and inside[-1]:
        return None
    structure: np.ndarray = kinds[(kinds != QUOTE) & (inside == 0)]
    return structure


def problem(body: bytes, *, features: int, max_rows: int) -> Problem | None:
    """The first reason `body` cannot be {"records": [record, ...]} with 1..max_rows flat records of at most
    `features` fields each; None when it may be one (or is not JSON at all, which the parser says cheaply)."""
    data = np.frombuffer(body, dtype=np.uint8)
    head = data[:4096]
    first = head[np.flatnonzero(~np.isin(head, (0x20, 0x09, 0x0A, 0x0D)))[:1]]
    if first.size and first[0] != OPEN_OBJECT:
        return Problem("body", 'expected an object, {"records": [...]}')
    chars = _structure(data)
    if chars is None:
        return None
    opens = (chars == OPEN_OBJECT) | (chars == OPEN_LIST)
    depth = np.cumsum(opens.astype(np.int32) - ((chars == CLOSE_OBJECT) | (chars == CLOSE_LIST)), dtype=np.int32)
    if depth.size == 0 or depth.min() < 0 or depth[-1] != 0:
        return None  # brackets that do not balance: not JSON
    colons, commas = chars == COLON, chars == COMMA
    keys = int(np.count_nonzero(colons & (depth == BODY)))
    if keys > 1:
        return Problem("body", f"{keys} fields; a request has one, records")
    if np.any((chars == OPEN_OBJECT) & (depth == RECORDS)):
        return Problem("records", "expected a list of records, got an object")
    records = opens & (depth == RECORD)
    record = np.cumsum(records) - 1  # the index of the record each character is in (or after)
    if np.count_nonzero(commas & (depth == RECORDS)) >= max_rows:  # n commas separate n + 1 items
        return Problem("records", f"more than {max_rows} records (the limit)")
    lists = np.flatnonzero(records & (chars == OPEN_LIST))
    if lists.size:
        return Problem(f"records.{record[lists[0]]}", "expected a record (an object), got a list")
    nested = np.flatnonzero(opens & (depth > RECORD))
    if nested.size:
        return Problem(f"records.{record[nested[0]]}", "a value is a list or an object; features are numbers or text")
    in_record = colons & (depth == RECORD)
    per_record = np.bincount(record[in_record], minlength=1)
    if per_record.size and per_record.max() > features:
        index = int(per_record.argmax())
        return Problem(f"records.{index}", f"{per_record[index]} fields; a record has the {features} of the schema")
    return None


@dataclass(frozen=True)
class RequestShape:
    """The guard's check of POST /predict bodies: `plausible` (payloads' byte counts) decides on the event loop
    whether the body needs `problem`, which runs in a thread."""

    features: int
    max_rows: int
    plausible: Callable[[bytes], bool]

    def suspicious(self, body: bytes) -> bool:
        return not self.plausible(body)

    def problem(self, body: bytes) -> tuple[str, str] | None:
        found = problem(body, features=self.features, max_rows=self.max_rows)
        return None if found is None else (found.field, found.reason)
