"""Request ids: made by the service, signed, recognised by any worker with the same key and by no other."""

from __future__ import annotations

import pytest

from mltemplate.monitoring.feedback import REQUEST_ID
from mltemplate.serving.ids import ID, RequestIds, derive_key

KEY = derive_key(b"a shared secret of the service")


def test_an_issued_id_names_its_record_count_to_any_worker_with_the_key() -> None:
    issued = RequestIds(KEY).issue(3)
    assert RequestIds(KEY).records(issued) == 3


def test_ids_fit_the_log_key_and_feedback_rule_and_start_with_the_time() -> None:
    first, second = RequestIds(KEY).issue(1, now=1.0), RequestIds(KEY).issue(65535, now=2.0)
    assert ID.match(first)
    assert REQUEST_ID.match(second)
    assert len(second) <= 64
    assert first < second  # issued later, sorted later: the log's index grows at its end


def test_two_ids_for_the_same_moment_differ() -> None:
    ids = RequestIds(KEY)
    assert len({ids.issue(1, now=5.0) for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    "forged",
    [
        "client-7",
        "0190f3c2a1b2-9f8e7d6c5b4a3928-1-5e4d3c2b1a09f8e7",  # the right shape, a made-up signature
    ],
)
def test_an_id_the_service_did_not_issue_is_not_recognised(forged: str) -> None:
    assert RequestIds(KEY).records(forged) is None


def test_a_changed_record_count_breaks_the_signature() -> None:
    issued = RequestIds(KEY).issue(1)
    start, _, sig = issued.rsplit("-", 2)
    assert RequestIds(KEY).records(f"{start}-ff-{sig}") is None


def test_another_key_does_not_recognise_the_id() -> None:
    issued = RequestIds(KEY).issue(1)
    assert RequestIds(derive_key(b"another secret")).records(issued) is None
    assert RequestIds().records(issued) is None  # a worker without a shared key has a random one of its own


@pytest.mark.parametrize("records", [0, 16**6])
def test_a_request_holds_at_least_one_record(records: int) -> None:
    with pytest.raises(ValueError, match="a request holds 1 to"):
        RequestIds(KEY).issue(records)
