"""Issue 21's faults of the prediction log under a real `bentoml serve` and load: PostgreSQL hung and then SIGTERM,
the log's volume read-only for 20 s, the volume full for 20 s. None loses an answered prediction: every request id
a client got a 2xx for is in the database or in the spool. The volume faults mount a small tmpfs (root only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mltemplate.report.loadtest import Server
from tests.monitoring.test_service_log import Load, logged
from tests.postgres import Cluster, cluster
from tests.serving.attackers import sigterm_and_wait

pytestmark = pytest.mark.integration

FAULT_S = 20


def spooled(spool: Path) -> set[str]:
    """The request ids in the spool files (a line cut short is not a request)."""
    found = set()
    for path in spool.glob("*.*") if spool.is_dir() else []:  # not labels/, the labels' own spool
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                found.add(str(json.loads(line)["request_id"]))
            except (ValueError, KeyError):
                continue
    return found


def _postgres_pids(db: Cluster) -> list[int]:
    """The server's postmaster and every backend (its children)."""
    postmaster = int((db.data / "postmaster.pid").read_text().splitlines()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(stat.parent.name))
        except OSError:
            continue
    return [postmaster, *children]


@pytest.fixture(scope="module")
def body(records: list[dict[str, Any]]) -> bytes:
    return json.dumps({"records": records[:1]}).encode()


def test_postgresql_hung_then_sigterm_loses_no_answered_prediction(
    repo: Path, body: bytes, tmp_path: Path, start_service: Callable[..., Server]
) -> None:
    spool = tmp_path / "spool"
    with cluster("monitoring") as db:
        server = start_service(repo, SERVE_WORKERS="2", MONITORING_DB_URL=db.url, MONITORING_SPOOL_DIR=str(spool))
        with Load(server.url, body) as load:
            time.sleep(3)
            hung = _postgres_pids(db)
            for pid in hung:
                os.kill(pid, signal.SIGSTOP)  # the server neither answers nor closes: every statement waits
            try:
                time.sleep(5)
                sigterm_and_wait(server)
            finally:
                for pid in hung:
                    os.kill(pid, signal.SIGCONT)
        answered = set(load.answered)
        stored = {request_id for request_id, _ in logged(db.url)} | spooled(spool)
    print(f"hung PostgreSQL then SIGTERM: {len(answered)} answered, {len(answered - stored)} lost")  # with -s
    assert answered, "no request was answered"
    assert answered <= stored, f"{len(answered - stored)} of {len(answered)} answered predictions lost"


@contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _read_only(volume: Path) -> Iterator[None]:
    """A remount refuses while a file is open for writing: the log holds none between its writes, so try again."""
    deadline = time.monotonic() + 10
    while subprocess.run(["mount", "-o", "remount,ro", str(volume)], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "the volume stayed busy: something holds a file open for writing"
        time.sleep(0.01)
    try:
        yield
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(volume)], check=True)


def _full(volume: Path) -> Iterator[None]:
    filler = volume / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 2**20)
                handle.flush()
        except OSError:
            pass
    try:
        yield
    finally:
        filler.unlink()


@pytest.mark.parametrize("fault", [_read_only, _full], ids=["read-only", "full"])
def test_the_log_volume_refusing_writes_for_20_s_loses_no_answered_prediction(
    repo: Path, body: bytes, tmp_path: Path, start_service: Callable[..., Server], fault: Any
) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with _tmpfs(tmp_path / "monitoring", "64m") as volume:
        database = f"sqlite:///{volume / 'predictions.db'}"
        spool = volume / "spool"  # the default layout: the spool on the log's own volume, refusing with it
        server = start_service(repo, SERVE_WORKERS="2", MONITORING_DB_URL=database, MONITORING_SPOOL_DIR=str(spool))
        with Load(server.url, body) as load:
            time.sleep(3)
            with contextmanager(fault)(volume):
                time.sleep(FAULT_S)
            time.sleep(3)
        sigterm_and_wait(server)
        answered = set(load.answered)
        stored = {request_id for request_id, _ in logged(database)} | spooled(spool)
    print(f"volume {fault.__name__} for {FAULT_S} s: {len(answered)} answered, {len(answered - stored)} lost")
    assert b"prediction log: database unavailable" in server.log.read_bytes()  # the fault was met
    assert answered, "no request was answered"
    assert answered <= stored, f"{len(answered - stored)} of {len(answered)} answered predictions lost"
