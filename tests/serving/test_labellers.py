"""Feedback credentials: parsed from the settings without ever echoing a token, checked in constant time, and
rate-limited per labeller."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mltemplate.serving.labellers import (
    DEFAULT,
    CredentialsError,
    Labellers,
    RateLimit,
    Refused,
    load,
    local_token,
    parse,
)

ALICE = "alice-token-0123456789"
BOB = "bob-token-abcdefghijkl"


def test_named_and_bare_tokens_are_read_from_lines_and_commas() -> None:
    text = f"# labellers\nalice:{ALICE}\n\n{BOB}, ops:{ALICE}x\n"
    assert parse(text, source="t") == [("alice", ALICE), (DEFAULT, BOB), ("ops", ALICE + "x")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("short", "credential 1 is not a token of at least 16"),
        (f"alice:{ALICE}\nalice:{BOB}", "labeller 'alice' has more than one token"),
        (f"alice:{ALICE}\nbob:{ALICE}", "two labellers share a token"),
        ("alice:with a space in it!", "credential 1 is not a token"),
    ],
)
def test_malformed_credentials_are_refused_without_showing_the_secret(text: str, message: str) -> None:
    with pytest.raises(CredentialsError, match=message) as caught:
        parse(text, source="SERVE_FEEDBACK_TOKEN")
    assert ALICE not in str(caught.value)
    assert BOB not in str(caught.value)


def test_the_bearer_token_names_its_labeller() -> None:
    labellers = Labellers([("alice", ALICE), ("bob", BOB)])
    assert labellers.authenticate(f"Bearer {BOB}") == "bob"
    assert labellers.authenticate(f"bearer  {ALICE} ") == "alice"


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("", 401), (f"Basic {ALICE}", 401), ("Bearer", 401), ("Bearer wrong-token-000000", 403)],
)
def test_no_or_another_credential_is_refused(header: str | None, status: int) -> None:
    with pytest.raises(Refused) as caught:
        Labellers([("alice", ALICE)]).authenticate(header)
    assert caught.value.status == status


def test_no_credentials_configured_means_feedback_is_off() -> None:
    assert not load(None, None)
    assert load(ALICE, None)


def test_the_token_file_is_read_and_a_missing_or_empty_one_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"{ALICE}\n")
    assert load(None, path).authenticate(f"Bearer {ALICE}") == DEFAULT
    with pytest.raises(CredentialsError, match="No such file"):
        load(None, tmp_path / "missing")
    path.write_text("# nothing yet\n")
    with pytest.raises(CredentialsError, match="holds no credential"):
        load(None, path)


def test_the_signing_secret_is_the_same_whatever_the_order_of_the_credentials() -> None:
    assert Labellers([("a", ALICE), ("b", BOB)]).secret == Labellers([("b", BOB), ("a", ALICE)]).secret
    assert Labellers().secret is None


def test_the_rate_limit_refills_at_its_rate_and_is_per_labeller() -> None:
    now = [0.0]
    limit = RateLimit(rate=100.0, burst=1000, clock=lambda: now[0])
    assert limit.take("alice", 1000) == 0.0
    assert limit.take("alice", 50) == pytest.approx(0.5)  # empty: 50 labels take half a second to come back
    assert limit.take("bob", 1000) == 0.0  # another credential has its own bucket
    now[0] = 0.5
    assert limit.take("alice", 50) == 0.0
    assert limit.take("alice", 5000) == pytest.approx(10.0)  # more than the burst waits for a full bucket


def test_the_local_token_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "monitoring" / "feedback-token"
    token = local_token(path)
    assert local_token(path) == token
    assert len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
