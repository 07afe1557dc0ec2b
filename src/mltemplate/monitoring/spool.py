"""The prediction log's spool: encoded requests as JSON lines on local disk, while the database refuses them. Each
worker appends to its own file (its pid in the name), fsynced, within a byte bound; files are written back a bounded
batch at a time once the database answers, and deleted when all of a file is in. A spool left by a worker that is
gone is taken over by the next one. A write the disk refuses (full, read-only) leaves the file as it was and says
False: the caller keeps the rows."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mltemplate.monitoring import codec

logger = logging.getLogger(__name__)

ROTATE_BYTES = 16 * 2**20
"""A file this big is set aside for writing back and a new one started, so that no file is read whole."""
BATCH_ROWS = 500
BATCH_BYTES = 8 * 2**20
"""Rows written back per transaction, at most: whichever comes first."""


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a spool file's owner, by the pid in its name)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """One worker's spool files in `directory`, at most `max_bytes` of them."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.prefix = f"{os.getpid()}-"
        self.current = self._new_name(".jsonl")
        self.bytes = 0
        """Bytes of this worker's files (its current one and those it set aside or claimed)."""
        self.lock = threading.Lock()

    def _new_name(self, suffix: str) -> Path:
        return self.directory / f"{self.prefix}{uuid.uuid4().hex[:8]}{suffix}"

    def append(self, rows: list[dict[str, Any]]) -> bool:
        """Append and fsync `rows`; False, with the file unchanged, when the disk or the byte bound refuses."""
        data = "".join(json.dumps(codec.to_json_safe(row), separators=(",", ":")) + "\n" for row in rows).encode()
        with self.lock:
            if self.bytes + len(data) > self.max_bytes:
                return False
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                with self.current.open("ab") as handle:
                    start = handle.tell()
                    try:
                        handle.write(data)
                        handle.flush()
                        os.fsync(handle.fileno())
                    except OSError:
                        # A line cut short would swallow the next one: cut the file back, or start another.
                        try:
                            handle.truncate(start)
                        except OSError:
                            self.current = self._new_name(".jsonl")
                        raise
            except OSError as error:
                logger.debug("prediction log: spool write refused: %s", error)
                return False
            self.bytes += len(data)
            if start + len(data) > ROTATE_BYTES:
                self._set_aside()
            return True

    def _set_aside(self) -> None:
        """The current file becomes one to write back; the next append starts a new one."""
        with contextlib.suppress(FileNotFoundError):
            self.current.rename(self._new_name(".claimed"))
        self.current = self._new_name(".jsonl")

    def claim_orphans(self) -> None:
        """Spool files of workers that are gone (a crash, a restart) become this worker's to write back."""
        with contextlib.suppress(FileNotFoundError):
            for path in sorted(self.directory.iterdir()):
                owner = path.name.split("-", 1)[0]
                if path.suffix not in {".jsonl", ".claimed"} or path.name.startswith(self.prefix):
                    continue
                if owner.isdigit() and alive(int(owner)):  # a live worker's file
                    continue
                target = self._new_name(".claimed")
                with contextlib.suppress(FileNotFoundError):  # another worker claimed it first
                    size = path.stat().st_size
                    path.rename(target)
                    with self.lock:
                        self.bytes += size

    def replay(self, write: Callable[[list[dict[str, Any]]], bool]) -> bool:
        """Write this worker's spooled rows back through `write`; True when the spool is empty after. A file is
        deleted once all its rows are in; when `write` fails the rest waits (a row written twice is stored once).
        The file being appended to is set aside only once the others are in: a database that stays down costs
        one try per call, not a file per call."""
        if not self._replay_set_aside(write):
            return False
        with self.lock:
            if not self.current.exists():
                return True
            self._set_aside()
        return self._replay_set_aside(write)

    def _replay_set_aside(self, write: Callable[[list[dict[str, Any]]], bool]) -> bool:
        for path in sorted(self.directory.glob(f"{self.prefix}*.claimed")):
            size = path.stat().st_size
            written = 0
            for batch in _batches(path):
                if not write(batch):
                    return False
                written += len(batch)
            path.unlink()
            with self.lock:
                self.bytes -= size
            logger.info("prediction log: wrote %d spooled requests back to the database", written)
        return True

    def records(self) -> int:
        """Records in this worker's spool files (reads them: for tests and shutdown counts, not the hot path)."""
        total = 0
        for path in self.directory.glob(f"{self.prefix}*"):
            with contextlib.suppress(FileNotFoundError):
                total += sum(sum(int(row["records"]) for row in batch) for batch in _batches(path))
        return total


def _batches(path: Path) -> Iterator[list[dict[str, Any]]]:
    """A spool file's rows, BATCH_ROWS / BATCH_BYTES at a time. A line cut short (a crash while it was written) is
    skipped with a warning; a line of a spool from before schema version 3 (one record) is encoded as a request."""
    rows: list[dict[str, Any]] = []
    legacy: list[dict[str, Any]] = []
    size = 0
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                logger.warning("prediction log: %s line %d is not JSON (a write cut short?); skipped", path, number)
                continue
            if "features" in data:
                legacy.append(data)
            else:
                rows.append(codec.from_json_safe(data))
            size += len(line)
            if len(rows) >= BATCH_ROWS or size >= BATCH_BYTES:
                yield rows
                rows, size = [], 0
    rows += codec.encode_records(legacy)
    if rows:
        yield rows
