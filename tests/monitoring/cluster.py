"""A PostgreSQL cluster the tests can stop and start again (tests/postgres.py's server, with its pg_ctl exposed),
for the database-restart-under-load test."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from mltemplate.probe import free_port
from tests.postgres import pg_bin


@dataclass
class Cluster:
    url: str
    workdir: Path
    port: int

    def _pg(self, *args: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True, cwd=self.workdir)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        data, log = self.workdir / "data", self.workdir / "log"
        self._pg(str(pg_bin() / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")

    def stop(self) -> None:
        self._pg(str(pg_bin() / "pg_ctl"), "-D", str(self.workdir / "data"), "-m", "fast", "-w", "stop")


@contextmanager
def cluster(database: str = "monitoring") -> Iterator[Cluster]:
    workdir = Path(tempfile.mkdtemp(prefix="pg-monitoring-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres")
    port = free_port()
    found = Cluster(f"postgresql://postgres@127.0.0.1:{port}/{database}", workdir, port)
    try:
        found._pg(str(pg_bin() / "initdb"), "-D", str(workdir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        found.start()
        try:
            found._pg(str(pg_bin() / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database)
            yield found
        finally:
            with suppress(subprocess.CalledProcessError):  # the test may have left it stopped
                found._pg(str(pg_bin() / "pg_ctl"), "-D", str(workdir / "data"), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
