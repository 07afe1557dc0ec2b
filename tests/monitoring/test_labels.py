"""The labels table and spool, on SQLite and a real PostgreSQL: a submission is stored once however often it is
sent, every label is kept and the last to arrive counts, and labels accepted while the database is down reach it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from mltemplate.monitoring import labels, migrations, store
from mltemplate.monitoring.feedback import Resolved

YES, NO = Resolved("r1", 0, "yes"), Resolved("r2", 0, "no")


@pytest.fixture
def db(database: str) -> sa.Engine:
    engine = migrations.open_store(database)
    yield engine
    engine.dispose()


def stored(db: sa.Engine) -> list[tuple[str, int, str, str, str]]:
    l = store.labels.c  # noqa: E741
    with db.connect() as connection:
        query = sa.select(l.request_id, l.position, l.label, l.labeller, l.submission)
        return sorted(tuple(row) for row in connection.execute(query))  # type: ignore[misc]


def counted(db: sa.Engine, labellers: list[str] | None = None) -> dict[str, str]:
    with db.connect() as connection:
        found = store.read_labels(connection, sa.select(store.counted_labels(labellers)))
    return dict(zip(found["__request_id__"], found[store.TRUTH], strict=True))


def test_a_submission_sent_twice_is_stored_once(db: sa.Engine) -> None:
    for _ in range(2):
        assert labels.store_labels(db, [YES, NO], labeller="alice", submission="s1") == 2
    assert stored(db) == [("r1", 0, "yes", "alice", "s1"), ("r2", 0, "no", "alice", "s1")]


def test_a_submission_id_reused_for_other_labels_stores_nothing(db: sa.Engine) -> None:
    labels.store_labels(db, [YES], labeller="alice", submission="s1")
    with pytest.raises(labels.SubmissionConflict, match="already stored 'yes' for record 'r1'/0"):
        labels.store_labels(db, [NO, Resolved("r1", 0, "no")], labeller="alice", submission="s1")
    assert stored(db) == [("r1", 0, "yes", "alice", "s1")]


def test_a_call_given_up_before_its_commit_stores_nothing(db: sa.Engine) -> None:
    with pytest.raises(labels.TooLate):
        labels.store_labels(db, [YES, NO], labeller="alice", submission="s1", abandoned=lambda: True)
    assert stored(db) == []


def test_every_label_is_kept_and_the_last_to_arrive_counts(db: sa.Engine) -> None:
    labels.store_labels(db, [Resolved("r1", 0, "no")], labeller="alice", submission="a", ts=10.0)
    labels.store_labels(db, [Resolved("r1", 0, "yes")], labeller="bob", submission="b", ts=30.0)
    labels.store_labels(db, [Resolved("r1", 0, "no")], labeller="alice", submission="c", ts=20.0)  # stored last
    assert len(stored(db)) == 3
    assert counted(db) == {"r1": "yes"}
    assert counted(db, ["alice"]) == {"r1": "no"}  # among trusted labellers only


def test_concurrent_sends_of_one_submission_store_it_once(db: sa.Engine) -> None:
    many = [Resolved(f"r{i}", 0, "yes") for i in range(2000)]
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(labels.store_labels(db, many, labeller="a", submission="s")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [2000] * 4
    assert len(stored(db)) == 2000


def test_spooled_labels_reach_the_database_and_a_dead_workers_spool_is_taken_over(
    database: str, tmp_path: Path
) -> None:
    spool = labels.LabelSpool(database, tmp_path / "spool", retry_interval_s=3600)  # replayed by hand here
    try:
        spool.add([YES], labeller="alice", submission="s1", ts=1.0)
        spool.add([YES], labeller="alice", submission="s1", ts=1.0)  # a retry while the database was down
        orphan = tmp_path / "spool" / "999999999-deadbeef.jsonl"  # no such process
        orphan.write_text((tmp_path / "spool" / spool.file.name).read_text().splitlines()[0].replace("r1", "r2") + "\n")
        assert spool.pending() == 3
        assert spool.replay() == 3
        assert spool.pending() == 0
    finally:
        spool.close()
    db = migrations.open_store(database)
    assert counted(db) == {"r1": "yes", "r2": "yes"}
    assert len(stored(db)) == 2
    db.dispose()


def test_the_spool_keeps_its_labels_while_the_database_is_down(tmp_path: Path) -> None:
    unreachable = f"sqlite:///{tmp_path / 'not-a-dir' / 'x' / 'log.db'}"
    (tmp_path / "not-a-dir").write_text("a file where the database's directory should be")
    spool = labels.LabelSpool(unreachable, tmp_path / "spool", retry_interval_s=3600)
    try:
        spool.add([YES], labeller="alice", submission="s1", ts=1.0)
        with pytest.raises(store.StoreError):
            spool.replay()
        assert spool.pending() == 1
    finally:
        spool.close()
    assert [p.name.split("-", 1)[0] for p in (tmp_path / "spool").iterdir()] == [str(os.getpid())]
