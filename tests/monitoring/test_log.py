"""The prediction log writer: batches reach the database; with the database down, records wait in the spool and
are written back, each once, when it returns; close() flushes; a spool left by a dead worker is taken over."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mltemplate.monitoring import codec, migrations, store
from mltemplate.monitoring.log import PredictionLog

COLUMNS = codec.Columns(numeric=("x",), categorical=("kind",), outputs=("no", "yes"))


def make_log(url: str, spool: Path) -> PredictionLog:
    return PredictionLog(url, columns=COLUMNS, spool_dir=spool, retry_interval_s=0.1)


def send(log: PredictionLog, count: int, prefix: str = "r") -> None:
    for i in range(count):
        log.record(f"{prefix}{i}", "v1", [(float(i), "a"), (0.5, "b")], ["no", "yes"], [[0.9, 0.1], [0.2, 0.8]])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
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


def test_a_full_queue_spills_to_the_spool_instead_of_blocking(tmp_path: Path) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("down")
    log = PredictionLog(
        f"sqlite:///{blocker / 'log.db'}", columns=COLUMNS, spool_dir=tmp_path / "s", max_queued_records=1
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
