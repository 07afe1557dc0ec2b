"""The prediction log writer: batches reach the database; with the database down or hung, records wait in the spool
and are written back, each once, when it returns; with the spool refusing too they wait in memory, and only past
the memory bound are they dropped (and counted); close() flushes; a spool left by a dead worker is taken over."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mltemplate.monitoring import codec, migrations, store
from mltemplate.monitoring.log import PredictionLog
from mltemplate.monitoring.spool import Spool

COLUMNS = codec.Columns(numeric=("x",), categorical=("kind",), outputs=("no", "yes"))


def make_log(url: str, spool: Path) -> PredictionLog:
    return PredictionLog(url, columns=COLUMNS, spool_dir=spool, retry_interval_s=0.1)


def send(log: PredictionLog, count: int, prefix: str = "r") -> None:
    for i in range(count):
        log.record(f"{prefix}{i}", "v1", [(float(i), "a"), (0.5, "b")], ["no", "yes"], [[0.9, 0.1], [0.2, 0.8]])


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:  # liveness, not speed: CI may be busy
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def stored(url: str) -> list[tuple[str, int]]:
    with migrations.open_store(url).connect() as connection:
        frame = store.read_records(connection)
    return sorted((str(r), int(p)) for r, p in zip(frame[codec.REQUEST_ID], frame[codec.POSITION], strict=True))


def spooled_records(spool: Path) -> int:
    return sum(json.loads(line)["records"] for path in spool.iterdir() for line in path.read_text().splitlines())


def test_records_reach_the_database_with_features_labels_and_probabilities(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = make_log(url, tmp_path / "spool")
    send(log, 3)
    log.close()
    assert stored(url) == [(f"r{i}", p) for i in range(3) for p in (0, 1)]
    with migrations.open_store(url).connect() as connection:
        frame = store.read_records(connection, store.requests.c.request_id == "r1")
    first, second = frame.to_dict("records")
    assert (first["x"], first["kind"], first[codec.LABEL]) == (1.0, "a", "no")
    assert (first[codec.OUTPUT + "no"], first[codec.OUTPUT + "yes"]) == (0.9, 0.1)
    assert (second["x"], second["kind"], second[codec.LABEL], second[codec.POSITION]) == (0.5, "b", "yes", 1)
    assert first[codec.MODEL_VERSION] == "v1"


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
    assert spooled_records(spool) == 8
    # A worker that is gone leaves its spool: rename it as if another pid (long dead) owned it.
    for path in spool.iterdir():
        path.rename(spool / f"999999999-{path.name.split('-', 1)[1]}")
    blocker.unlink()
    successor = make_log(url, spool)
    wait_for(lambda: successor.written == 8)
    successor.close()
    assert len(stored(url)) == 8
    assert list(spool.iterdir()) == []


class Refusing(Spool):
    """A spool whose disk refuses every write while `refuse` is set (a full or read-only volume)."""

    def __init__(self, directory: Path, **options: Any) -> None:
        super().__init__(directory, **options)
        self.refuse = threading.Event()
        self.refuse.set()

    def append(self, rows: list[dict[str, Any]]) -> bool:
        return False if self.refuse.is_set() else super().append(rows)


def test_records_wait_in_memory_while_the_database_and_the_spool_refuse_and_none_is_lost(tmp_path: Path) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("down")
    log = make_log(f"sqlite:///{blocker / 'log.db'}", tmp_path / "spool")
    log.spool = refusing = Refusing(tmp_path / "spool", max_bytes=2**20)
    send(log, 5)
    time.sleep(2.5)  # past spool_after_s: the spooler tried, and the disk said no
    assert (log.spooled, log.pending.records, log.dropped) == (0, 10, 0)
    refusing.refuse.clear()
    wait_for(lambda: log.spooled == 10)
    assert log.pending.records == 0
    log.close()
    assert spooled_records(tmp_path / "spool") == 10


def test_past_the_memory_bound_records_are_dropped_counted_and_record_never_blocks(tmp_path: Path) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("down")
    dropped: list[int] = []
    log = PredictionLog(
        f"sqlite:///{blocker / 'log.db'}",
        columns=COLUMNS,
        spool_dir=tmp_path / "s",
        max_queued_records=4,
        on_dropped=dropped.append,
    )
    log.spool = Refusing(tmp_path / "s", max_bytes=2**20)
    start = time.perf_counter()
    send(log, 50)
    assert time.perf_counter() - start < 1
    assert (log.pending.records, log.dropped, sum(dropped)) == (4, 96, 96)
    log.close(timeout_s=1)
    assert log.dropped == 100  # at close, what neither took is dropped too, and said


def test_a_hung_database_costs_nothing_but_the_spool(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = make_log(url, tmp_path / "spool")
    hung = threading.Event()
    original = log._write

    def write(rows: list[dict[str, Any]], *, retry_now: bool = False) -> bool:
        hung.wait()  # the driver waits for an answer that does not come
        return original(rows, retry_now=retry_now)

    log._write = write  # type: ignore[method-assign]
    send(log, 5)
    wait_for(lambda: log.spooled == 10)
    start = time.perf_counter()
    log.close(timeout_s=3)
    assert time.perf_counter() - start < 4
    assert (log.pending.records, log.dropped) == (0, 0)
    assert spooled_records(tmp_path / "spool") == 10
    hung.set()


def test_the_spool_is_written_off_the_callers_thread(tmp_path: Path) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("down")
    log = make_log(f"sqlite:///{blocker / 'log.db'}", tmp_path / "spool")
    writers: set[str] = set()
    original = log.spool.append

    def append(rows: list[dict[str, Any]]) -> bool:
        writers.add(threading.current_thread().name)
        return original(rows)

    log.spool.append = append  # type: ignore[method-assign]
    send(log, 3)
    wait_for(lambda: log.spooled == 6)
    log.close()
    assert threading.current_thread().name not in writers


@pytest.mark.parametrize("bad", ["postgresql://nobody@127.0.0.1:1/none"])
def test_an_unreachable_server_never_reaches_the_caller(tmp_path: Path, bad: str) -> None:
    log = make_log(bad, tmp_path / "spool")
    send(log, 1)
    log.close()
    assert log.spooled == 2


def test_a_spool_line_cut_short_is_skipped_and_an_older_spool_is_written_back(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    older = {  # a spool line from schema version 2: one record, features by name
        "request_id": "old",
        "position": 0,
        "ts": time.time(),
        "model_version": "v0",
        "features": {"x": 2.0, "kind": "b"},
        "label": "yes",
        "probabilities": {"no": 0.3, "yes": 0.7},
    }
    (spool / "999999999-dead.jsonl").write_text(json.dumps(older) + '\n{"request_id": "cut', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = make_log(url, spool)
    wait_for(lambda: log.written == 1)
    send(log, 1, prefix="after")
    log.close()
    assert stored(url) == [("after0", 0), ("after0", 1), ("old", 0)]
    assert list(spool.iterdir()) == []
