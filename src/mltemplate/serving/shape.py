"""Why a body cannot be a prediction request, found from its bytes alone: numpy finds the JSON structure (brackets,
braces, colons and commas outside strings) and counts, per record, what a request of this schema may hold. No
Python object is built per value, and the body is scanned in blocks that stop at the first problem, so a body of a
million keys or of nested lists is refused in milliseconds and a few MiB, where parsing it and listing its errors
took gigabytes and seconds (payloads.py parses only bodies that pass)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

QUOTE, BACKSLASH = ord('"'), ord("\\")
OPEN_OBJECT, CLOSE_OBJECT, OPEN_LIST, CLOSE_LIST = (ord(c) for c in "{}[]")
COLON, COMMA = ord(":"), ord(",")
LOWER = 0x20  # `[` | 0x20 is `{` and `]` | 0x20 is `}`: one comparison finds both kinds of bracket
WHITESPACE = (0x20, 0x09, 0x0A, 0x0D)
# Depths, counted after an opening bracket: the body's object is 1, the records list 2, a record 3.
BODY, RECORDS, RECORD = 1, 2, 3
BLOCK_BYTES = 256 * 2**10
"""Scanned at a time: the temporaries stay a few MiB, and a problem early in the body ends the scan early."""


@dataclass(frozen=True)
class Problem:
    """The field at fault (`records.3`, `records`, `body`) and what is wrong, without the client's values."""

    field: str
    reason: str


def _escaped(data: np.ndarray, quotes: np.ndarray, carried: int) -> np.ndarray:
    """Which quotes are escaped: those right after an odd run of backslashes (`carried` of them ended the block
    before, and count for a run that starts this one)."""
    slashes = np.flatnonzero(data == BACKSLASH)
    if not slashes.size:
        escaped_by_carry = np.zeros(quotes.size, dtype=bool)
        escaped_by_carry[: 1 if quotes.size and quotes[0] == 0 and carried % 2 else 0] = True
        return escaped_by_carry
    starts = np.flatnonzero(np.diff(slashes, prepend=-2) != 1)  # where each run of consecutive backslashes begins
    ends = np.append(slashes[starts[1:] - 1], slashes[-1])
    lengths = np.diff(np.append(starts, slashes.size))
    if slashes[0] == 0:
        lengths[0] += carried
    run = np.minimum(np.searchsorted(ends, quotes - 1), ends.size - 1)
    escaped: np.ndarray = ((ends[run] == quotes - 1) & (lengths[run] % 2 == 1)) | ((quotes == 0) & (carried % 2 == 1))
    return escaped


def _trailing_slashes(data: np.ndarray, carried: int) -> int:
    others = np.flatnonzero(data != BACKSLASH)
    return carried + data.size if not others.size else int(data.size - 1 - others[-1])


class _Scan:
    """The state carried from one block to the next, and the checks on each block's structure."""

    def __init__(self, *, features: int, max_rows: int) -> None:
        self.features, self.max_rows = features, max_rows
        self.inside = 0  # within a string where the block starts
        self.slashes = 0  # backslashes that ended the previous block
        self.depth = 0
        self.body_keys = 0
        self.items = 0  # commas in the records list
        self.records = 0  # records opened so far
        self.keys = 0  # fields of the record open at the end of the previous block
        self.broken = False  # not JSON: the parser will say so, cheaply

    def structure(self, data: np.ndarray) -> np.ndarray:
        """The block's structural characters outside strings, in order."""
        low = data | LOWER
        quote = data == QUOTE
        kinds = data[(low == OPEN_OBJECT) | (low == CLOSE_OBJECT) | (data == COLON) | (data == COMMA) | quote]
        delimits = kinds == QUOTE
        if self.slashes or np.any(data == BACKSLASH):  # rare in requests: only then find the escaped quotes
            escaped = _escaped(data, np.flatnonzero(quote), self.slashes)
            delimits[np.flatnonzero(delimits)[escaped]] = False
            self.slashes = _trailing_slashes(data, self.slashes)
        inside = (np.cumsum(delimits, dtype=np.int32) + self.inside) & 1  # after each character: within a string
        if inside.size:
            self.inside = int(inside[-1])
        chars: np.ndarray = kinds[(kinds != QUOTE) & (inside == 0)]
        return chars

    def block(self, data: np.ndarray) -> Problem | None:
        chars = self.structure(data)
        if not chars.size:
            return None
        opens = (chars == OPEN_OBJECT) | (chars == OPEN_LIST)
        depth = self.depth + np.cumsum(opens.astype(np.int32) - ((chars == CLOSE_OBJECT) | (chars == CLOSE_LIST)))
        self.depth = int(depth[-1])
        if depth.min() < 0:
            self.broken = True
            return None
        colons = chars == COLON
        self.body_keys += int(np.count_nonzero(colons & (depth == BODY)))
        if self.body_keys > 1:
            return Problem("body", f"{self.body_keys} fields; a request has one, records")
        if np.any((chars == OPEN_OBJECT) & (depth == RECORDS)):
            return Problem("records", "expected a list of records, got an object")
        self.items += int(np.count_nonzero((chars == COMMA) & (depth == RECORDS)))
        if self.items >= self.max_rows:  # n commas separate n + 1 items
            return Problem("records", f"more than {self.max_rows} records (the limit)")
        records = opens & (depth == RECORD)
        starts = np.flatnonzero(records)
        before = np.cumsum(records, dtype=np.int32)  # records opened in this block, up to each character
        lists = np.flatnonzero(records & (chars == OPEN_LIST))
        if lists.size:
            index = self.records + before[lists[0]] - 1
            return Problem(f"records.{index}", "expected a record (an object), got a list")
        nested = np.flatnonzero(opens & (depth > RECORD))
        if nested.size:
            index = self.records + before[nested[0]] - 1
            return Problem(f"records.{index}", "a value is a list or an object; features are numbers or text")
        return self._fields(np.cumsum(colons & (depth == RECORD), dtype=np.int32), starts)

    def _fields(self, keys: np.ndarray, starts: np.ndarray) -> Problem | None:
        """Count the fields of each record; `keys` counts record-level colons up to each character."""
        carried = int(keys[starts[0] - 1]) if starts.size and starts[0] else (0 if starts.size else int(keys[-1]))
        if self.keys + carried > self.features:
            return self._too_many(self.records - 1, self.keys + carried)
        if starts.size:
            ends = np.append(starts[1:] - 1, keys.size - 1)
            counts = keys[ends] - keys[starts]
            worst = int(counts.argmax())
            if counts[worst] > self.features:
                return self._too_many(self.records + worst, int(counts[worst]))
            self.records += starts.size
            self.keys = int(counts[-1])
        else:
            self.keys += carried
        return None

    def _too_many(self, index: int, count: int) -> Problem:
        return Problem(f"records.{index}", f"{count} fields or more; a record has the {self.features} of the schema")


def problem(body: bytes, *, features: int, max_rows: int) -> Problem | None:
    """The first reason `body` cannot be {"records": [record, ...]} with 1..max_rows flat records of at most
    `features` fields each; None when it may be one (or is not JSON at all, which the parser says cheaply)."""
    data = np.frombuffer(body, dtype=np.uint8)
    head = data[:4096]
    first = head[np.flatnonzero(~np.isin(head, WHITESPACE))[:1]]
    if first.size and first[0] != OPEN_OBJECT:
        return Problem("body", 'expected an object, {"records": [...]}')
    scan = _Scan(features=features, max_rows=max_rows)
    for start in range(0, data.size, BLOCK_BYTES):
        found = scan.block(data[start : start + BLOCK_BYTES])
        if found is not None or scan.broken:
            return found
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
