"""Issue 21's attacks on a real `bentoml serve`, each with the figures of the issue as bounds: abandoned chunked bodies
(the budget comes back), a record of 800,000 unknown keys (refused in under a second, the worker within 100 MiB),
30,000 unknown paths (the metrics directory under 10 MiB), 300 slow bodies (95% of good requests answered),
refusals that would flood the log with the client's values (at most 1 KiB each, no value), and /feedback nested too
deeply (a JSON 400)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mltemplate.report.loadtest import Server
from tests.service_client import post_json, request
from tests.serving.attackers import Tricklers, abandoned_chunked_body, good_clients, rss_mib, workers

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}
MIB = 2**20


@pytest.fixture(scope="module")
def example(pipeline_repo: Path) -> dict[str, Any]:
    return dict(json.loads((pipeline_repo / "examples/predict.json").read_text()))


@pytest.fixture(scope="module")
def one_worker(start_service: Callable[..., Server], pipeline_repo: Path) -> Server:
    """The deployment's sizes: one worker, the default 10 MiB bodies, 64 MiB budget and 10 s timeout."""
    return start_service(pipeline_repo, SERVE_WORKERS="1", SERVE_PREDICTION_LOG="false")


def test_abandoned_chunked_bodies_give_their_bytes_back_and_a_good_request_gets_200(
    one_worker: Server, example: dict[str, Any]
) -> None:
    sizes = [7 * MIB] * 20 + [1 * MIB] * 40
    with ThreadPoolExecutor(len(sizes)) as pool:
        answers = list(pool.map(lambda size: abandoned_chunked_body(one_worker.url, size), sizes))
    assert set(answers) <= {408, 503, 504, None}, answers  # cut off, refused past the budget, or timed out
    reply = post_json(one_worker.url, {"records": example["records"] * 1000})  # a body of about 700 KiB
    assert reply.status == 200, reply.text
    assert request(one_worker.url, "/readyz", method="GET").status == 200
    assert request(one_worker.url, "/livez", method="GET").status == 200


def test_a_record_of_800000_unknown_keys_is_refused_in_under_a_second_within_100_mib(
    one_worker: Server, example: dict[str, Any]
) -> None:
    (pid,) = workers(one_worker)
    post_json(one_worker.url, example)
    baseline = rss_mib(pid)
    body = b'{"records": [{' + b",".join(b'"k%d":1' % i for i in range(800_000)) + b"}]}"
    assert len(body) < 10 * MIB
    start = time.perf_counter()
    reply = request(one_worker.url, "/predict", body=body, headers=JSON)
    elapsed = time.perf_counter() - start
    assert (reply.status, reply.json()["field"]) == (400, "records.0"), reply.text[:500]
    assert elapsed < 1.0
    assert len(reply.text) < 1024
    assert rss_mib(pid) - baseline < 100
    assert post_json(one_worker.url, example).status == 200


def test_good_clients_keep_being_answered_beside_clients_sending_impossible_bodies(
    one_worker: Server, example: dict[str, Any]
) -> None:
    bad = b'{"records": [{' + b",".join(b'"k%d":1' % i for i in range(80_000)) + b"}]}"  # about 0.9 MiB
    good = json.dumps(example).encode()
    alone = good_clients(one_worker.url, good, clients=8, seconds=4)
    stop = threading.Event()

    def attacker() -> None:
        while not stop.is_set():
            request(one_worker.url, "/predict", body=bad, headers=JSON)

    attackers = [threading.Thread(target=attacker) for _ in range(8)]
    for thread in attackers:
        thread.start()
    try:
        beside = good_clients(one_worker.url, good, clients=8, seconds=4)
    finally:
        stop.set()
        for thread in attackers:
            thread.join(30)
    assert set(beside) == {200}, beside
    # Before the fix: 1,042 req/s alone, 8 beside the attackers (0.8 %). The bound is an order of magnitude above
    # that, not a speed: the 2 cores are shared with the clients, the attackers and, in CI, another test worker
    # (a loaded run measured 25 %).
    assert beside[200] >= 0.1 * alone[200], (alone, beside)


def test_30000_unknown_paths_leave_the_metrics_directory_under_10_mib(
    start_service: Callable[..., Server], pipeline_repo: Path, tmp_path: Path
) -> None:
    home = tmp_path / "bentoml"
    server = start_service(pipeline_repo, SERVE_WORKERS="1", SERVE_PREDICTION_LOG="false", BENTOML_HOME=str(home))
    with ThreadPoolExecutor(8) as pool:
        statuses = set(pool.map(lambda i: request(server.url, f"/scan/{i}", method="GET").status, range(30_000)))
    assert statuses == {404}
    metrics = request(server.url, "/metrics", method="GET")
    assert metrics.status == 200
    assert "/scan/" not in metrics.text
    assert 'endpoint="/{unknown}"' in metrics.text
    size = sum(path.stat().st_size for path in home.rglob("*") if path.is_file() and "prometheus" in str(path))
    assert size < 10 * MIB


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_300_slow_bodies_leave_95_percent_of_good_requests_answered(
    start_service: Callable[..., Server], pipeline_repo: Path, example: dict[str, Any], chunked: bool
) -> None:
    server = start_service(pipeline_repo, SERVE_PREDICTION_LOG="false")  # two workers: 128 slots each
    with Tricklers(server.url, 300, chunked=chunked) as slow:
        time.sleep(2)  # all 300 connected and trickling
        statuses = good_clients(server.url, json.dumps(example).encode(), clients=8, seconds=8)
    answered = statuses[200] / sum(statuses.values())
    assert answered >= 0.95, statuses
    assert set(slow.answers) <= {408, None}, slow.answers  # cut off by the body deadline, never a 429


@pytest.fixture(scope="module")
def logged(start_service: Callable[..., Server], pipeline_repo: Path) -> Server:
    return start_service(pipeline_repo, SERVE_WORKERS="1", SERVE_PREDICTION_LOG="false")


CARD = "4111 1111 1111 1111"


def _refusals(example: dict[str, Any]) -> dict[str, bytes]:
    record = example["records"][0]
    feature = next(iter(record))
    return {
        "a value": json.dumps({"records": [{**record, feature: CARD}]}).encode(),
        "a key": json.dumps({"records": [{**record, CARD: 1}]}).encode(),
        "1024 empty records": json.dumps({"records": [{}] * 1024}).encode(),
        "not JSON": f'{{"records": [{CARD}'.encode(),
    }


@pytest.mark.parametrize("case", ["a value", "a key", "1024 empty records", "not JSON"])
def test_a_refused_request_writes_at_most_1_kib_of_log_and_no_input_value(
    logged: Server, example: dict[str, Any], case: str
) -> None:
    post_json(logged.url, example)
    time.sleep(0.5)
    before = logged.log.stat().st_size
    reply = request(logged.url, "/predict", body=_refusals(example)[case], headers=JSON)
    assert reply.status == 400
    time.sleep(0.5)  # the worker's log lines reach the file
    written = logged.log.read_bytes()[before:]
    assert len(written) <= 1024, written[:2000]
    assert b"refused POST /predict 400" in written
    assert CARD.encode() not in written
    assert b"Traceback" not in written


TOKEN = "a-labeller-token-for-the-abuse-tests"
LABELLER = {**JSON, "Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def labelled(start_service: Callable[..., Server], pipeline_repo: Path) -> Server:
    """With the prediction log on (its own SQLite file) and a labeller's token: /feedback reads the bodies."""
    return start_service(pipeline_repo, SERVE_WORKERS="1", SERVE_FEEDBACK_TOKEN=TOKEN)


def test_feedback_nested_too_deeply_gets_a_json_400(labelled: Server) -> None:
    reply = request(labelled.url, "/feedback", body=b'{"labels": ' + b"[" * 100_000, headers=LABELLER)
    assert reply.status == 400
    assert reply.json()["field"] == "body"


def test_a_request_id_with_a_trailing_newline_is_refused(labelled: Server) -> None:
    body = json.dumps({"labels": [{"request_id": "client-7\n", "label": "x"}]}).encode()
    reply = request(labelled.url, "/feedback", body=body, headers=LABELLER)
    assert (reply.status, reply.json()["field"]) == (400, "labels.0.request_id")
