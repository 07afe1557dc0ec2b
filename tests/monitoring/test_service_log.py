"""The service's prediction log under a real `bentoml serve`, on SQLite and on a real PostgreSQL: each answer is
logged once under the id it carries, feedback round-trips, and neither a database restart nor a SIGTERM during a
load run loses an answered request."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mltemplate.monitoring import codec, migrations, store
from mltemplate.report.loadtest import Server, served
from tests.postgres import cluster
from tests.service_client import post_json, request
from tests.serving.attackers import sigterm_and_wait

pytestmark = pytest.mark.integration


def logged(url: str) -> list[tuple[str, int]]:
    db = migrations.open_store(url)
    try:
        with db.connect() as connection:
            frame = store.read_records(connection)
        return sorted((str(r), int(p)) for r, p in zip(frame[codec.REQUEST_ID], frame[codec.POSITION], strict=True))
    finally:
        db.dispose()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def env(url: str, spool: Path, **extra: str) -> dict[str, str]:
    return {"SERVE_WORKERS": "2", "MONITORING_DB_URL": url, "MONITORING_SPOOL_DIR": str(spool), **extra}


def test_each_answer_is_logged_once_under_its_id_and_feedback_labels_it(
    repo: Path, records: list[dict[str, Any]], database: str, tmp_path: Path
) -> None:
    with served(repo, env=env(database, tmp_path / "spool")) as url:
        first = post_json(url, {"records": records[:3]})
        assert first.status == 200, first.text
        rid = first.json()["request_id"]
        assert first.headers["x-request-id"] == rid
        mine = request(
            url,
            "/predict",
            body=json.dumps({"records": records[:1]}).encode(),
            headers={"Content-Type": "application/json", "X-Request-ID": "client-7"},
        )
        assert mine.json()["request_id"] == "client-7" == mine.headers["x-request-id"]
        bad_id = request(
            url,
            "/predict",
            body=json.dumps({"records": records[:1]}).encode(),
            headers={"Content-Type": "application/json", "X-Request-ID": "no spaces"},
        )
        assert (bad_id.status, bad_id.json()["field"]) == (400, "X-Request-ID")
        wait_for(lambda: len(logged(database)) == 4)
        assert logged(database) == sorted([(rid, 0), (rid, 1), (rid, 2), ("client-7", 0)])

        classes = first.json()["predictions"][0]["probabilities"].keys()
        label = sorted(classes)[0]
        refused = post_json(
            url,
            {"labels": [{"request_id": "client-7", "label": label}, {"request_id": "ghost", "label": label}]},
            path="/feedback",
        )
        assert refused.status == 422, refused.text
        assert refused.json()["errors"] == [
            {"index": 1, "field": "labels.1.request_id", "error": "unknown request id 'ghost'"}
        ]
        wrong = post_json(url, {"labels": [{"request_id": "client-7", "label": "not-a-class"}]}, path="/feedback")
        assert (wrong.status, wrong.json()["field"]) == (400, "labels.0.label")
        stored = post_json(
            url,
            {
                "labels": [
                    {"request_id": "client-7", "label": label},
                    {"request_id": rid, "position": 2, "label": label},
                ]
            },
            path="/feedback",
        )
        assert stored.status == 200, stored.text
        assert stored.json() == {"stored": 2}


class Load:
    """Clients that POST one record at a time with their own X-Request-ID and remember which ids got a 2xx."""

    def __init__(self, url: str, body: bytes, clients: int = 8) -> None:
        self.url, self.body = url, body
        self.answered: list[str] = []
        self.failed = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        port = int(self.url.rsplit(":", 1)[1])
        while not self.stop.is_set():
            rid = uuid.uuid4().hex
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request(
                    "POST",
                    "/predict",
                    body=self.body,
                    headers={"Content-Type": "application/json", "X-Request-ID": rid},
                )
                status = connection.getresponse().status
                connection.close()
            except OSError:
                status = 0
            with self.lock:
                if 200 <= status < 300:
                    self.answered.append(rid)
                else:
                    self.failed += 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


def test_a_database_restart_during_load_loses_no_answered_request(
    repo: Path, records: list[dict[str, Any]], tmp_path: Path
) -> None:
    body = json.dumps({"records": records[:1]}).encode()
    with cluster("monitoring") as db, served(repo, env=env(db.url, tmp_path / "spool")) as url, Load(url, body) as load:
        time.sleep(3)
        db.stop()
        time.sleep(4)  # answers keep coming while the database is down: they go to the spool
        during = len(load.answered)
        db.start()
        time.sleep(3)
        load.__exit__()
        assert len(load.answered) > during > 0
        assert load.failed == 0
        wait_for(lambda: len(logged(db.url)) == len(load.answered), timeout=60)
        assert sorted(r for r, _ in logged(db.url)) == sorted(load.answered)


def test_sigterm_during_load_loses_no_answered_request(
    repo: Path, records: list[dict[str, Any]], tmp_path: Path, start_service: Callable[..., Server]
) -> None:
    database = f"sqlite:///{tmp_path / 'log.db'}"
    body = json.dumps({"records": records[:1]}).encode()
    server = start_service(repo, **env(database, tmp_path / "spool"))
    with Load(server.url, body) as load:
        time.sleep(3)
        sigterm_and_wait(server)
    assert load.answered
    assert sorted(r for r, _ in logged(database)) == sorted(load.answered)
