"""Overload and timeouts on a real `bentoml serve`: 429/503 with Retry-After and 504, never a 500."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mltemplate.report.loadtest import Server
from tests.service_client import Reply, json_records, post_json

pytestmark = pytest.mark.integration

ROWS = 1024


@pytest.fixture(scope="module")
def big_body(pipeline_repo: Path) -> dict[str, Any]:
    """ROWS real records: slow enough to parse and predict that requests overlap."""
    example = json.loads((pipeline_repo / "examples/predict.json").read_text())
    test = pd.read_csv(pipeline_repo / "data/prepared/test.csv")
    records = json_records(test[list(example["records"][0])])
    return {"records": (records * (ROWS // len(records) + 1))[:ROWS]}


def _burst(url: str, payload: dict[str, Any], clients: int) -> list[Reply]:
    """`clients` requests released at the same moment."""
    start = threading.Barrier(clients)
    replies: list[Reply] = []
    lock = threading.Lock()

    def client() -> None:
        start.wait()
        reply = post_json(url, payload)
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return replies


@pytest.fixture(scope="module")
def overloaded(pipeline_repo: Path, start_service: Callable[..., Server]) -> str:
    env = {"SERVE_WORKERS": "1", "SERVE_MAX_CONCURRENCY": "2", "SERVE_MAX_WAITING_ROWS": str(2 * ROWS)}
    return start_service(pipeline_repo, **env).url


def test_overload_gets_429_or_503_with_retry_after_never_500(overloaded: str, big_body: dict[str, Any]) -> None:
    replies = _burst(overloaded, big_body, clients=16)
    statuses = sorted(r.status for r in replies)
    assert len(replies) == 16
    assert set(statuses) <= {200, 429, 503}, statuses
    refused = [r for r in replies if r.status in (429, 503)]
    assert refused, f"no request was refused: {statuses}"
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert all("error" in r.json() for r in refused)
    assert 200 in statuses


def test_still_answers_after_overload(overloaded: str, big_body: dict[str, Any]) -> None:
    reply = post_json(overloaded, {"records": big_body["records"][:3]})
    assert reply.status == 200, reply.text
    assert len(reply.json()["predictions"]) == 3


@pytest.fixture(scope="module")
def impatient(pipeline_repo: Path, start_service: Callable[..., Server]) -> str:
    return start_service(pipeline_repo, SERVE_WORKERS="1", SERVE_TIMEOUT_S="0.001").url


def test_request_past_its_timeout_gets_504(impatient: str, big_body: dict[str, Any]) -> None:
    for _ in range(3):  # a timed-out request leaves the server answering the next one
        reply = post_json(impatient, big_body)
        assert reply.status == 504, reply.text
        assert "error" in reply.json()
