"""POST /feedback under a real `bentoml serve`, as an attacker would try it: no credential (401), a wrong one (403),
a client that reuses another client's id, a labeller past its rate (429); and as a labeller: who sent each label is
kept, a second label is history, a re-sent submission stores nothing twice."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mltemplate.monitoring import codec, migrations, store
from mltemplate.report.loadtest import served
from tests.service_client import Reply, a_label, request

pytestmark = pytest.mark.integration

TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-abcdefghijkl"}
BURST = 2000


@pytest.fixture(scope="module")
def server(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("feedback")
    database = f"sqlite:///{tmp / 'log.db'}"
    env = {
        "SERVE_WORKERS": "1",  # one bucket per labeller: the rate limit is per worker
        "MONITORING_DB_URL": database,
        "MONITORING_SPOOL_DIR": str(tmp / "spool"),
        "SERVE_FEEDBACK_TOKEN": ",".join(f"{name}:{token}" for name, token in TOKENS.items()),
        "SERVE_FEEDBACK_BURST": str(BURST),
        "SERVE_FEEDBACK_RATE": "100",
    }
    with served(repo, env=env) as url:
        yield url, database


def predict(url: str, records: list[dict[str, Any]], client_id: str | None = None) -> Reply:
    headers = {"Content-Type": "application/json", **({"X-Request-ID": client_id} if client_id else {})}
    reply = request(url, "/predict", body=json.dumps({"records": records}).encode(), headers=headers)
    assert reply.status == 200, reply.text
    return reply


def feedback(url: str, body: Any, authorization: str | None = None) -> Reply:
    headers = {"Content-Type": "application/json", **({"Authorization": authorization} if authorization else {})}
    return request(url, "/feedback", body=json.dumps(body).encode(), headers=headers)


def bearer(name: str) -> str:
    return f"Bearer {TOKENS[name]}"


def query(database: str, statement: Any) -> list[Any]:
    db = migrations.open_store(database)
    try:
        with db.connect() as connection:
            return list(connection.execute(statement))
    finally:
        db.dispose()


def stored(database: str, request_id: str) -> list[tuple[str, str]]:
    l = store.labels.c  # noqa: E741
    return [tuple(r) for r in query(database, sa.select(l.label, l.labeller).where(l.request_id == request_id))]


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), (f"Basic {TOKENS['alice']}", 401), ("Bearer not-a-token-of-ours-000", 403)],
)
def test_without_a_credential_401_with_a_wrong_one_403_and_nothing_is_stored(
    server: tuple[str, str], records: list[dict[str, Any]], authorization: str | None, status: int
) -> None:
    url, database = server
    answer = predict(url, records[:1])
    rid = answer.json()["request_id"]
    reply = feedback(url, {"labels": [{"request_id": rid, "label": a_label(answer)}]}, authorization)
    assert reply.status == status, reply.text
    assert reply.json()["field"] == "Authorization"
    assert ("www-authenticate" in reply.headers) == (status == 401)
    assert stored(database, rid) == []


def test_a_client_that_sends_another_clients_id_attaches_nothing_to_that_record(
    server: tuple[str, str], records: list[dict[str, Any]]
) -> None:
    url, database = server
    victim = predict(url, records[:1], client_id="victim-1")
    victim_id = victim.json()["request_id"]
    squatters = [predict(url, records[1:2], client_id=cid).json()["request_id"] for cid in (victim_id, "victim-1")]
    assert victim_id not in squatters
    # An attacker's labels need a credential; a labeller's label for the client's own id names no record.
    assert feedback(url, {"labels": [{"request_id": victim_id, "label": a_label(victim, 1)}]}).status == 401
    client_id = feedback(url, {"labels": [{"request_id": "victim-1", "label": a_label(victim)}]}, bearer("alice"))
    assert client_id.status == 422, client_id.text
    assert (
        feedback(url, {"labels": [{"request_id": victim_id, "label": a_label(victim)}]}, bearer("alice")).status == 200
    )

    time.sleep(1.5)  # the log writer's next batch
    db = migrations.open_store(database)
    with db.connect() as connection:
        logged = store.read_records(connection, store.requests.c.request_id.in_([victim_id, *squatters]))
        truth = store.read_labels(connection, sa.select(store.counted_labels()))
    db.dispose()
    joined = logged.merge(truth, on=[codec.REQUEST_ID, codec.POSITION])
    assert joined[codec.REQUEST_ID].tolist() == [victim_id]  # the label joins the victim's own record only
    first = next(iter(records[0]))
    assert joined[first].tolist() == [records[0][first]]
    by_id = dict(zip(logged[codec.REQUEST_ID], logged[codec.CLIENT_REQUEST_ID], strict=True))
    assert by_id == {victim_id: "victim-1", squatters[0]: victim_id, squatters[1]: "victim-1"}


def test_each_label_keeps_who_sent_it_and_a_second_one_is_history(
    server: tuple[str, str], records: list[dict[str, Any]]
) -> None:
    url, database = server
    answer = predict(url, records[:1])
    rid = answer.json()["request_id"]
    for name, index in (("alice", 0), ("bob", 1)):
        reply = feedback(url, {"labels": [{"request_id": rid, "label": a_label(answer, index)}]}, bearer(name))
        assert reply.status == 200, reply.text
    assert sorted(stored(database, rid)) == sorted([(a_label(answer, 0), "alice"), (a_label(answer, 1), "bob")])
    counted = query(database, sa.select(store.counted_labels()).where(sa.literal_column("request_id") == rid))
    assert [(row.label, row.labeller) for row in counted] == [(a_label(answer, 1), "bob")]  # the last one counts


def test_a_resent_submission_stores_nothing_twice_and_a_reused_id_with_other_labels_is_refused(
    server: tuple[str, str], records: list[dict[str, Any]]
) -> None:
    url, database = server
    answer = predict(url, records[:2])
    rid = answer.json()["request_id"]
    body = {"labels": [{"request_id": rid, "position": p, "label": a_label(answer)} for p in (0, 1)]}
    first, again = (feedback(url, body, bearer("alice")) for _ in range(2))
    assert (
        first.json()
        == again.json()
        == {
            "submission_id": first.json()["submission_id"],
            "stored": 2,
            "queued": 0,
            "refused": [],
        }
    )
    named = {**body, "submission_id": "alice-batch-1"}
    assert feedback(url, named, bearer("alice")).status == 200
    changed = {**named, "labels": [{**named["labels"][0], "label": a_label(answer, 1)}]}
    conflict = feedback(url, changed, bearer("alice"))
    assert (conflict.status, conflict.json()["field"]) == (409, "submission_id")
    assert len(stored(database, rid)) == 4  # two submissions of two labels each, none twice


def test_a_labeller_past_its_rate_gets_429_with_retry_after_and_others_do_not(
    server: tuple[str, str], records: list[dict[str, Any]]
) -> None:
    url, _ = server
    label = a_label(predict(url, records[:1]))
    ghosts = [{"request_id": f"ghost-{i}", "label": label} for i in range(BURST)]
    half = {"labels": ghosts[: BURST // 2]}
    assert feedback(url, half, bearer("alice")).status == 422  # none known: counted against the rate all the same
    limited = feedback(url, {"labels": ghosts}, bearer("alice"))
    assert limited.status == 429, limited.text
    assert int(limited.headers["retry-after"]) >= 1
    assert feedback(url, half, bearer("bob")).status == 422  # bob's bucket is his own
