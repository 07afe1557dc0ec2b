"""The shape check finds, from a body's bytes alone, why it cannot be a prediction request: too many fields in a
record, nesting, too many records or top-level fields; it never refuses a body a valid request could be."""

from __future__ import annotations

import json
import time

import pytest

from mltemplate.serving import shape
from mltemplate.serving.shape import Problem, problem

FEATURES = [f"f{i}" for i in range(30)]
RECORD = {name: 1.5 for name in FEATURES}


@pytest.fixture(autouse=True, params=[shape.BLOCK_BYTES, 2, 7], ids=["blocks", "2-byte-blocks", "7-byte-blocks"])
def block_bytes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case also in tiny blocks: what a block boundary cuts (an escape, a string, a record) is carried over."""
    monkeypatch.setattr(shape, "BLOCK_BYTES", request.param)


def check(body: bytes | dict[str, object]) -> Problem | None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return problem(data, features=len(FEATURES), max_rows=1024)


@pytest.mark.parametrize(
    "body",
    [
        {"records": [RECORD] * 1024},
        {"records": [{**RECORD, "f0": 'a "quoted": {[value]}, with \\ and :'}]},
        {"records": [{**RECORD, "f1": "ends in a backslash \\", "f2": '\\"}, {"'}]},
        {"records": []},
        b'{"records": [1, 2]}',  # not records, but cheap for the parser to refuse
        b'{"records": [{"f0": "not closed}]}',
        b"{[}",
    ],
)
def test_bodies_a_request_could_be_or_that_the_parser_refuses_cheaply_pass(body: bytes | dict[str, object]) -> None:
    assert check(body) is None


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"records": [RECORD, {**RECORD, "extra": 1}]}, "records.1", "31 fields or more; a record has the 30"),
        ({"records": [RECORD, {**RECORD, "f3": [1, [2]]}]}, "records.1", "a value is a list or an object"),
        ({"records": [RECORD, [1, 2]]}, "records.1", "expected a record (an object), got a list"),
        ({"records": [RECORD] * 1025}, "records", "more than 1024 records"),
        ({"records": [1] * 1025}, "records", "more than 1024 records"),
        ({"records": {"a": 1}}, "records", "expected a list of records"),
        ({"records": [], "a": 1}, "body", "2 fields; a request has one"),
        (b'  [{"records": []}]', "body", "expected an object"),
    ],
)
def test_bodies_no_request_can_be_are_named_with_the_field_at_fault(
    body: bytes | dict[str, object], field: str, reason: str
) -> None:
    found = check(body)
    assert found is not None
    assert (found.field, found.reason[: len(reason)]) == (field, reason)


def test_structure_inside_strings_is_not_structure() -> None:
    tricky = {**RECORD, "f0": "}, {" * 100 + '"' + ":" * 100}
    assert check({"records": [tricky]}) is None


def test_a_record_of_800000_unknown_keys_is_refused_in_well_under_a_second(block_bytes: None) -> None:
    if shape.BLOCK_BYTES < 1024:
        pytest.skip("timed with the real block size only")
    body = b'{"records": [{' + b",".join(b'"k%d":1' % i for i in range(800_000)) + b"}]}"
    start = time.perf_counter()
    found = check(body)
    elapsed = time.perf_counter() - start
    assert found is not None
    assert found.field == "records.0"
    assert found.reason.endswith(" fields or more; a record has the 30 of the schema")
    assert elapsed < 1.0  # milliseconds: the scan stops in the first block
