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
from tests.service_client import Reply, a_label, post_json, request
from tests.serving.attackers import sigterm_and_wait

pytestmark = pytest.mark.integration

TOKEN = "a-test-token-for-the-labeller"


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


def client_ids(url: str) -> dict[str, str | None]:
    db = migrations.open_store(url)
    try:
        with db.connect() as connection:
            frame = store.read_records(connection)
        ids = frame[codec.CLIENT_REQUEST_ID].astype(object).where(frame[codec.CLIENT_REQUEST_ID].notna(), None)
        return dict(zip(frame[codec.REQUEST_ID], ids, strict=True))
    finally:
        db.dispose()


def feedback(url: str, body: dict[str, Any], token: str = TOKEN) -> Reply:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    return request(url, "/feedback", body=json.dumps(body).encode(), headers=headers)


def env(url: str, spool: Path, **extra: str) -> dict[str, str]:
    return {"SERVE_WORKERS": "2", "MONITORING_DB_URL": url, "MONITORING_SPOOL_DIR": str(spool), **extra}


def test_each_answer_is_logged_once_under_the_services_id_and_feedback_labels_it(
    repo: Path, records: list[dict[str, Any]], database: str, tmp_path: Path
) -> None:
    with served(repo, env=env(database, tmp_path / "spool", SERVE_FEEDBACK_TOKEN=TOKEN)) as url:
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
        single = mine.json()["request_id"]
        assert single == mine.headers["x-request-id"] != "client-7"  # the client's id is not the key
        bad_id = request(
            url,
            "/predict",
            body=json.dumps({"records": records[:1]}).encode(),
            headers={"Content-Type": "application/json", "X-Request-ID": "no spaces"},
        )
        assert (bad_id.status, bad_id.json()["field"]) == (400, "X-Request-ID")
        wait_for(lambda: len(logged(database)) == 4)
        assert logged(database) == sorted([(rid, 0), (rid, 1), (rid, 2), (single, 0)])
        assert client_ids(database) == {rid: None, single: "client-7"}

        label = a_label(first)
        ghost = {"request_id": "ghost", "label": label}
        whole = feedback(url, {"labels": [{"request_id": single, "label": label}, ghost], "all_or_nothing": True})
        assert whole.status == 422, whole.text
        assert whole.json()["errors"] == [
            {"index": 1, "field": "labels.1.request_id", "error": "unknown request id 'ghost'"}
        ]
        wrong = feedback(url, {"labels": [{"request_id": single, "label": "not-a-class"}]})
        assert (wrong.status, wrong.json()["field"]) == (400, "labels.0.label")
        stored = feedback(
            url,
            {
                "labels": [
                    {"request_id": single, "label": label},
                    {"request_id": rid, "position": 2, "label": label},
                    ghost,
                ]
            },
        )
        assert stored.status == 200, stored.text
        assert stored.json()["stored"] == 2
        assert [p["field"] for p in stored.json()["refused"]] == ["labels.2.request_id"]


class Load:
    """Clients that POST one record at a time with their own X-Request-ID and remember the service's id of each
    answer that got a 2xx."""

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
                response = connection.getresponse()
                status, answer = response.status, response.read()
                connection.close()
            except OSError:
                status, answer = 0, b""
            with self.lock:
                if 200 <= status < 300:
                    self.answered.append(json.loads(answer)["request_id"])
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
