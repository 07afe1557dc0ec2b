"""The prediction log writer: batches reach the database; with the database down, records wait in the spool and
are written back, each once, when it returns; close() flushes; a spool left by a dead worker is taken over."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from mltemplate.monitoring import store
from mltemplate.monitoring.log import PredictionLog

FEATURES = ("x", "kind")
CLASSES = ("no", "yes")


def make_log(url: str, spool: Path) -> PredictionLog:
    return PredictionLog(url, features=FEATURES, classes=CLASSES, spool_dir=spool, retry_interval_s=0.1)


def send(log: PredictionLog, count: int, prefix: str = "r") -> None:
    for i in range(count):
        log.record(f"{prefix}{i}", "v1", [(float(i), "a"), (0.5, "b")], ["no", "yes"], [[0.9, 0.1], [0.2, 0.8]])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def stored(url: str) -> list[tuple[str, int]]:
    db = store.open_store(url)
    with db.connect() as connection:
        rows = connection.execute(sa.select(store.predictions.c.request_id, store.predictions.c.position))
        return sorted((str(r), int(p)) for r, p in rows)


def test_records_reach_the_database_with_features_labels_and_probabilities(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = make_log(url, tmp_path / "spool")
    send(log, 3)
    log.close()
    assert stored(url) == [(f"r{i}", p) for i in range(3) for p in (0, 1)]
    with store.open_store(url).connect() as connection:
        first = connection.execute(sa.select(store.predictions).where(store.predictions.c.request_id == "r1")).first()
    assert first is not None
    assert first.features == {"x": 1.0, "kind": "a"}
    assert first.label == "no"
    assert first.probabilities == {"no": 0.9, "yes": 0.1}
    assert first.model_version == "v1"


def test_records_wait_in_the_spool_while_the_database_is_down_and_are_written_once_after(tmp_path: Path) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("not a directory")  # the SQLite file's directory cannot exist: the database is "down"
    url = f"sqlite:///{blocker / 'log.db'}"
    log = make_log(url, tmp_path / "spool")
    send(log, 5)
    wait_for(lambda: log.spooled == 10)
    blocker.unlink()  # the database is back
    wait_for(lambda: log.written == 10)
    send(log, 2, prefix="after")
    log.close()
    assert len(stored(url)) == 14
    assert list((tmp_path / "spool").iterdir()) == []


def test_close_while_the_database_is_down_keeps_everything_on_disk_for_the_next_worker(tmp_path: Path) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("down")
    url = f"sqlite:///{blocker / 'log.db'}"
    spool = tmp_path / "spool"
    log = make_log(url, spool)
    send(log, 4)
    log.close()
    assert sum(len(p.read_text().splitlines()) for p in spool.iterdir()) == 8
    # A worker that is gone leaves its spool: rename it as if another pid (long dead) owned it.
    for path in spool.iterdir():
        path.rename(spool / f"999999999-{path.name.split('-', 1)[1]}")
    blocker.unlink()
    successor = make_log(url, spool)
    wait_for(lambda: successor.written == 8)
    successor.close()
    assert len(stored(url)) == 8
    assert list(spool.iterdir()) == []


def test_a_full_queue_spills_to_the_spool_instead_of_blocking(tmp_path: Path) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("down")
    log = PredictionLog(
        f"sqlite:///{blocker / 'log.db'}", features=FEATURES, classes=CLASSES, spool_dir=tmp_path / "s", max_queue=1
    )
    start = time.perf_counter()
    send(log, 50)
    assert time.perf_counter() - start < 5
    log.close()
    assert log.spooled == 100


@pytest.mark.parametrize("bad", ["postgresql://nobody@127.0.0.1:1/none"])
def test_an_unreachable_server_never_reaches_the_caller(tmp_path: Path, bad: str) -> None:
    log = make_log(bad, tmp_path / "spool")
    send(log, 1)
    log.close()
    assert log.spooled == 2
