"""Isolation on a real `bentoml serve`: a request the model cannot score fails alone (400 naming its field) while
concurrent good requests all get their own answer; refusals are readable by clients that write the whole body
before reading (urllib, requests, curl); bodies past the per-worker byte budget get 503 with Retry-After."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from mltemplate.model import load
from mltemplate.predict import predict
from mltemplate.report.loadtest import Server
from tests.conftest import run
from tests.service_client import Reply, post_json

pytestmark = pytest.mark.integration

MAX_BODY_BYTES = 1 << 20
BUDGET = 2 * MAX_BODY_BYTES + MAX_BODY_BYTES // 2  # room for two of the largest bodies, not three
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(pipeline_repo: Path, start_service: Callable[..., Server]) -> str:
    env = {
        "SERVE_WORKERS": "1",
        "SERVE_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "SERVE_MAX_INFLIGHT_BODY_BYTES": str(BUDGET),
    }
    run([sys.executable, "-m", "mltemplate.release.provenance", "write"], cwd=pipeline_repo)
    return start_service(pipeline_repo, **env).url


@pytest.fixture(scope="module")
def good(pipeline_repo: Path) -> dict[str, Any]:
    return dict(json.loads((pipeline_repo / "examples/predict.json").read_text())["records"][0])


@pytest.fixture(scope="module")
def unscorable(pipeline_repo: Path, good: dict[str, Any]) -> tuple[str, float]:
    """A (feature, finite value) the trained model cannot score, found by asking the model itself: which one
    depends on the estimator and data (params.yaml), so none is hard-coded here."""
    trained = load(
        model_path=pipeline_repo / "models/model.skops", metadata_path=pipeline_repo / "models/metadata.json"
    )
    for value in (float(np.finfo(np.float64).max), -float(np.finfo(np.float64).max)):
        for feature in trained.schema.numeric:
            try:
                with np.errstate(all="ignore"):
                    answer = predict(trained, [{**good, feature: value}])
            except ValueError:
                return feature, value
            if not np.isfinite(answer).all():
                return feature, value
    pytest.skip(f"the {trained.metadata.estimator} model scores every finite value of every feature")


def _clients(url: str, jobs: list[tuple[str, dict[str, Any]]], rounds: int) -> list[tuple[str, Reply]]:
    """One thread per job, all released together, each posting its body `rounds` times."""
    start = threading.Barrier(len(jobs))
    replies: list[tuple[str, Reply]] = []
    lock = threading.Lock()

    def client(kind: str, payload: dict[str, Any]) -> None:
        start.wait()
        for _ in range(rounds):
            reply = post_json(url, payload)
            with lock:
                replies.append((kind, reply))

    threads = [threading.Thread(target=client, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return replies


def test_a_record_the_model_cannot_score_gets_400_naming_its_field(
    server: str, good: dict[str, Any], unscorable: tuple[str, float]
) -> None:
    feature, value = unscorable
    reply = post_json(server, {"records": [good, {**good, feature: value}]})
    assert reply.status == 400, reply.text
    assert reply.json()["field"] == f"records.1.{feature}"
    assert repr(value) in reply.json()["error"]


def test_concurrent_good_requests_all_succeed_beside_requests_the_model_cannot_score(
    server: str, good: dict[str, Any], unscorable: tuple[str, float]
) -> None:
    feature, value = unscorable
    alone = post_json(server, {"records": [good] * 3}).json()["predictions"]
    bad = {"records": [good, {**good, feature: value}]}
    jobs = [("good", {"records": [good] * 3})] * 12 + [("bad", bad)] * 4
    replies = _clients(server, jobs, rounds=40)
    assert len(replies) == 16 * 40
    good_replies = [reply for kind, reply in replies if kind == "good"]
    bad_replies = [reply for kind, reply in replies if kind == "bad"]
    assert [r.status for r in good_replies if r.status != 200] == []
    assert all(r.json()["predictions"] == alone for r in good_replies)
    assert {(r.status, r.json()["field"]) for r in bad_replies} == {(400, f"records.1.{feature}")}


OVERSIZED = b" " * (MAX_BODY_BYTES + 1)


def _urllib(url: str, body: bytes | Iterator[bytes]) -> tuple[int, dict[str, Any]]:
    """urllib sends `Connection: close` and the whole body before it reads a byte of the answer."""
    try:
        sent = urllib.request.Request(url, data=body, headers=JSON)  # noqa: S310 (the test server's http:// URL)
        with urllib.request.urlopen(sent, timeout=30) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_urllib_reads_the_413_for_a_declared_oversized_body(server: str) -> None:
    status, body = _urllib(f"{server}/predict", OVERSIZED)
    assert (status, body["field"]) == (413, "body")


def test_urllib_reads_the_413_for_a_chunked_oversized_body(server: str) -> None:
    status, body = _urllib(f"{server}/predict", iter([OVERSIZED[: MAX_BODY_BYTES // 2]] * 3))
    assert (status, body["field"]) == (413, "body")


@pytest.mark.parametrize("chunked", [False, True])
def test_requests_reads_the_413(server: str, chunked: bool) -> None:
    body = iter([OVERSIZED[: MAX_BODY_BYTES // 2]] * 3) if chunked else OVERSIZED
    answer = requests.post(f"{server}/predict", data=body, headers=JSON, timeout=30)
    assert (answer.status_code, answer.json()["field"]) == (413, "body")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("expect", ["100-continue", ""], ids=["waits-for-100-continue", "sends-at-once"])
def test_curl_reads_the_413(server: str, tmp_path: Path, expect: str) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(OVERSIZED)
    done = subprocess.run(
        [
            *("curl", "-sS", "-H", "Content-Type: application/json", "-H", f"Expect: {expect}"),
            *("--data-binary", f"@{body}", "-w", "\n%{http_code}", f"{server}/predict"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text, status = done.stdout.rsplit("\n", 1)
    assert (int(status), json.loads(text)["field"]) == (413, "body")


def _hold(url: str, length: int) -> socket.socket:
    """A request whose headers announce `length` bytes, of which only the first few are ever sent."""
    parts = urlsplit(url)
    held = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    held.sendall(head.encode() + b"{")
    return held


def test_bodies_past_the_byte_budget_get_503_with_retry_after_and_then_it_is_released(
    server: str, good: dict[str, Any]
) -> None:
    held = [_hold(server, MAX_BODY_BYTES) for _ in range(2)]
    try:
        for _ in range(50):  # until the server has admitted both (it reserves their bytes on their headers)
            answer = requests.post(f"{server}/predict", data=b" " * MAX_BODY_BYTES, headers=JSON, timeout=30)
            if answer.status_code == 503:
                break
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["retry-after"]) >= 1
        assert "error" in answer.json()
        small = post_json(server, {"records": [good]})  # small bodies still fit beside the held ones
        assert small.status == 200, small.text
    finally:
        for sock in held:
            sock.close()
    for _ in range(50):  # the server notices the closed connections and releases their bytes
        reply = post_json(server, {"records": [good]})
        big = requests.post(f"{server}/predict", data=b" " * MAX_BODY_BYTES, headers=JSON, timeout=30)
        if big.status_code != 503:
            break
    assert big.status_code == 400, big.text  # admitted: refused only for not being JSON
    assert reply.status == 200
