"""True labels sent the moment their answers arrive, under a real `bentoml serve` with 2 workers, on SQLite and a real
PostgreSQL: every one is stored, also across a 10 s database outage; and 16 labellers posting 10,000 labels each
beside prediction traffic get answers that say what happened to their labels."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from mltemplate.model_metadata import read_model_metadata
from mltemplate.monitoring import codec, migrations, store
from mltemplate.report.loadtest import served
from tests.monitoring.test_service_log import Load, env, wait_for
from tests.postgres import cluster
from tests.service_client import Reply, request

pytestmark = pytest.mark.integration

TOKEN = "the-labellers-token-0123"
PREDICTIONS = 1000


def post(url: str, path: str, body: Any, token: str | None = None, timeout: float = 60) -> Reply:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    return request(url, path, body=json.dumps(body).encode(), headers=headers, timeout=timeout)


def joined(url: str) -> pd.DataFrame:
    """The logged records with the label that counts for each, as `make monitor` and `make retrain` read them."""
    db = migrations.open_store(url)
    try:
        with db.connect() as connection:
            logged = store.read_records(connection)
            truth = store.read_labels(connection, sa.select(store.counted_labels()))
    finally:
        db.dispose()
    return logged.merge(truth, on=[codec.REQUEST_ID, codec.POSITION])


def truths(repo: Path) -> list[str]:
    target = read_model_metadata(repo / "models/metadata.json").input_schema.target
    return pd.read_csv(repo / "data/prepared/test.csv")[target].astype(str).tolist()


def predict_then_label(
    url: str, records: list[dict[str, Any]], labels: list[str], count: int, *, on_answer: Callable[[int], None] = print
) -> tuple[dict[str, str], list[int]]:
    """`count` single-record predictions from 8 clients, each followed at once by its true label (resent while the
    answer is 503, as Retry-After says); returns the label sent per id and every feedback status seen."""
    sent: dict[str, str] = {}
    statuses: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        answer = post(url, "/predict", {"records": [records[i % len(records)]]})
        assert answer.status == 200, answer.text
        rid, label = answer.json()["request_id"], labels[i % len(labels)]
        while True:
            reply = post(url, "/feedback", {"labels": [{"request_id": rid, "label": label}]}, TOKEN)
            with lock:
                statuses.append(reply.status)
            if reply.status != 503:
                break
            time.sleep(int(reply.headers["retry-after"]))
        assert reply.status in (200, 202), reply.text
        with lock:
            sent[rid] = label
        on_answer(i)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))
    return sent, statuses


def test_1000_predictions_followed_at_once_by_their_labels_are_all_stored(
    repo: Path, records: list[dict[str, Any]], database: str, tmp_path: Path
) -> None:
    with served(repo, env=env(database, tmp_path / "spool", SERVE_FEEDBACK_TOKEN=TOKEN)) as url:
        sent, statuses = predict_then_label(url, records, truths(repo), PREDICTIONS, on_answer=lambda _: None)
        print({status: statuses.count(status) for status in sorted(set(statuses))})
        # Not one refused, although most arrive before their record is written (202: spooled, as when the
        # database is busy beyond a retry, and written from there)
        assert set(statuses) <= {200, 202}
        wait_for(lambda: len(joined(database)) == PREDICTIONS)
    found = joined(database)
    assert dict(zip(found[codec.REQUEST_ID], found[store.TRUTH], strict=True)) == sent


def test_labels_sent_across_a_10s_database_outage_are_all_stored(
    repo: Path, records: list[dict[str, Any]], tmp_path: Path
) -> None:
    with (
        cluster("monitoring") as db,
        served(repo, env=env(db.url, tmp_path / "spool", SERVE_FEEDBACK_TOKEN=TOKEN)) as url,
    ):
        outage: dict[str, float] = {}

        def between(i: int) -> None:  # stop the database after a third of the answers, for 10 s
            if i == PREDICTIONS // 3 and not outage:
                outage["start"] = time.monotonic()
                db.stop()
                time.sleep(10)
                db.start()

        sent, statuses = predict_then_label(url, records, truths(repo), PREDICTIONS, on_answer=between)
        assert outage
        print({status: statuses.count(status) for status in sorted(set(statuses))})
        assert 202 in statuses  # kept in the labels spool while the database was down
        assert set(statuses) <= {200, 202}
        wait_for(lambda: len(joined(db.url)) == PREDICTIONS, timeout=60)
        found = joined(db.url)
    assert dict(zip(found[codec.REQUEST_ID], found[store.TRUTH], strict=True)) == sent


CALLERS = 16
LABELS_EACH = 10_000
RECORDS_PER_REQUEST = 1000
BATCH = 2000


class Caller:
    """One labeller: predicts its records, then posts their labels in submissions of BATCH, resending each until
    it is stored, and checks after every answer that the database holds what the answer says."""

    def __init__(self, url: str, database: sa.Engine, number: int, records: list[dict[str, Any]], label: str) -> None:
        self.url, self.db, self.name, self.records, self.label = url, database, f"caller-{number}", records, label
        self.answers: list[int] = []
        self.ids: list[str] = []

    def stored(self, submission: str) -> int:
        l = store.labels.c  # noqa: E741
        query = sa.select(sa.func.count()).where(l.labeller == self.name, l.submission == submission)
        with self.db.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def predict(self) -> None:
        """The records to label: 1000 per request, asked again after an overload answer (how slow depends on the
        project's model; this is the set-up, the labels are the test)."""
        for start in range(0, LABELS_EACH, RECORDS_PER_REQUEST):
            chunk = [self.records[(start + i) % len(self.records)] for i in range(RECORDS_PER_REQUEST)]
            while (reply := post(self.url, "/predict", {"records": chunk})).status in (429, 503, 504):
                time.sleep(float(reply.headers.get("retry-after", "0.5")))
            assert reply.status == 200, reply.text
            self.ids.append(reply.json()["request_id"])

    def post_labels(self) -> None:
        items = [
            {"request_id": rid, "position": p, "label": self.label}
            for rid in self.ids
            for p in range(RECORDS_PER_REQUEST)
        ]
        for number, start in enumerate(range(0, LABELS_EACH, BATCH)):
            submission = f"{self.name}-{number}"
            body = {"labels": items[start : start + BATCH], "submission_id": submission}
            self.submit(body, submission)

    def submit(self, body: dict[str, Any], submission: str) -> None:
        in_flight = False  # an earlier attempt timed out: it may still commit, so nothing is claimed
        while True:
            try:
                reply = post(self.url, "/feedback", body, f"{self.name}-token-0123456789", timeout=30)
            except TimeoutError:
                in_flight = True
                continue
            self.answers.append(reply.status)
            if reply.status == 200:
                assert reply.json()["stored"] == BATCH
                assert self.stored(submission) == BATCH  # stored: all of it, and once
                return
            if reply.status == 202:
                return  # queued on the service's disk: checked once the spool is written back
            assert reply.status in (429, 503, 504), reply.text
            if reply.status == 504:
                in_flight = True
            elif not in_flight:
                assert self.stored(submission) == 0  # refused: nothing of it is stored
            time.sleep(float(reply.headers.get("retry-after", "0.5")))


def everyone(jobs: Iterable[Callable[[], None]]) -> None:
    """Run the jobs on threads of their own at once; a job's failure fails the test (a thread's would vanish)."""
    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def test_16_callers_posting_10000_labels_each_beside_predictions_get_the_outcome_their_answers_say(
    repo: Path, records: list[dict[str, Any]], database: str, tmp_path: Path
) -> None:
    tokens = ",".join(f"caller-{i}:caller-{i}-token-0123456789" for i in range(CALLERS))
    settings = {"SERVE_FEEDBACK_TOKEN": tokens, "SERVE_TIMEOUT_S": "3", "SERVE_FEEDBACK_RATE": "2000"}
    label = truths(repo)[0]
    engine = migrations.open_store(database)
    with served(repo, env=env(database, tmp_path / "spool", **settings)) as url:
        body = json.dumps({"records": records[:1]}).encode()
        callers = [Caller(url, engine, i, records, label) for i in range(CALLERS)]
        everyone(caller.predict for caller in callers)
        with Load(url, body, clients=2) as load:
            everyone(caller.post_labels for caller in callers)
        assert load.failed == 0
        answers = [status for caller in callers for status in caller.answers]
        print({status: answers.count(status) for status in sorted(set(answers))})
        l = store.labels.c  # noqa: E741
        count = sa.select(sa.func.count()).select_from(store.labels).where(l.labeller.like("caller-%"))

        def all_stored() -> bool:
            with engine.connect() as connection:
                return int(connection.execute(count).scalar() or 0) == CALLERS * LABELS_EACH

        wait_for(all_stored, timeout=60)
    engine.dispose()
