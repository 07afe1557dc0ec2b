"""The service's prediction log writer: the request path only enqueues a tuple; a background thread encodes each
request as one row (store.encode) and batches them into the database, and when the database is down or slow it
appends them to a spool file on local disk and writes them back once the database answers again. Inserts ignore
duplicate request ids, so a replayed batch is stored once. `close()` (the service's shutdown hook, on SIGTERM)
flushes what is queued."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mltemplate.monitoring import store
from mltemplate.paths import SPOOL_DIR

logger = logging.getLogger(__name__)

Entry = tuple[str, float, str, Sequence[Sequence[Any]], Sequence[str] | None, Any]
"""(request_id, time, model_version, rows in feature order, labels (None for regression), outputs: records x
outputs numbers)."""

_STOP = object()
SPOOL_BATCH = 500
"""Spooled requests written back per transaction."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PredictionLog:
    """`record(...)` never blocks and never raises; the thread does the rest. One per service worker."""

    def __init__(
        self,
        url: str,
        *,
        columns: store.Columns,
        spool_dir: Path = SPOOL_DIR,
        max_queued_records: int = 100_000,
        batch_rows: int = 10_000,
        flush_interval_s: float = 0.2,
        retry_interval_s: float = 1.0,
    ) -> None:
        self.url = url
        self.columns = columns
        self.spool_dir = spool_dir
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.spool_file = spool_dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        # Bounded in records, not requests: 256-record requests would otherwise queue 256 times the memory.
        self.queue: queue.Queue[Any] = queue.Queue()
        self.max_queued_records = max_queued_records
        self.queued_records = 0
        self.queued_lock = threading.Lock()
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self.spool_lock = threading.Lock()
        self.db: sa.Engine | None = None
        self.next_try = 0.0
        self.written = 0  # records, as are the spooled
        self.spooled = 0
        self.thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self.thread.start()

    # --- the request path --------------------------------------------------------------------------------------

    def record(
        self,
        request_id: str,
        model_version: str,
        rows: Sequence[Sequence[Any]],
        labels: Sequence[str] | None,
        outputs: Any,
    ) -> None:
        """`rows` in `columns` order (numeric features, then categorical), a label per row (None for regression),
        and the outputs (class probabilities, or the predicted values) as an array or nested lists."""
        entry: Entry = (request_id, time.time(), model_version, rows, labels, outputs)
        with self.queued_lock:
            room = self.queued_records + len(rows) <= self.max_queued_records
            if room:
                self.queued_records += len(rows)
        if room:
            self.queue.put_nowait(entry)
        else:  # the thread is far behind (a database that hangs): keep the records on disk rather than drop them
            self._spool(self._rows([entry]))

    # --- the thread ----------------------------------------------------------------------------------------------

    def _rows(self, entries: Sequence[Entry]) -> list[dict[str, Any]]:
        out = []
        for request_id, ts, version, rows, labels, outputs in entries:
            try:
                out.append(store.encode(request_id, ts, version, self.columns, rows, labels, outputs))
            except Exception:  # a malformed entry is the service's bug: say so, keep logging the others
                logger.exception("prediction log: could not encode request %s", request_id)
        return out

    def _take(self, first: Any) -> tuple[list[Entry], bool]:
        """`first` and whatever else arrives within the flush interval, up to batch_rows rows; True when stopping."""
        entries: list[Entry] = []
        stopping = first is _STOP
        if not stopping:
            entries.append(first)
        rows = sum(len(e[3]) for e in entries)  # records, not requests: a batch's size in bytes follows them
        deadline = time.monotonic() + self.flush_interval_s
        while not stopping and rows < self.batch_rows:
            try:
                item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                stopping = True
                break
            entries.append(item)
            rows += len(item[3])
        if stopping:  # take everything left, without waiting
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    entries.append(item)
        return entries, stopping

    def _run(self) -> None:
        self._claim_orphans()
        while True:
            try:
                first = self.queue.get(timeout=self.retry_interval_s)
            except queue.Empty:
                self._replay_spool()
                continue
            entries, stopping = self._take(first)
            with self.queued_lock:
                self.queued_records -= sum(len(e[3]) for e in entries)
            rows = self._rows(entries)
            if rows and not self._write(rows):
                self._spool(rows)
            if stopping:
                self._replay_spool()
                return
            self._replay_spool()

    def _connect(self) -> sa.Engine | None:
        if self.db is None:
            if time.monotonic() < self.next_try:
                return None
            try:
                self.db = store.open_store(self.url)
            except Exception as error:  # whatever the driver raises: the service must keep answering
                self._down(error)
                return None
        return self.db

    def _down(self, error: BaseException) -> None:
        if self.next_try == 0.0 or logger.isEnabledFor(logging.DEBUG):
            logger.warning("prediction log: database unavailable (%s); spooling to %s", error, self.spool_dir)
        self.next_try = time.monotonic() + self.retry_interval_s

    def _write(self, rows: list[dict[str, Any]]) -> bool:
        if time.monotonic() < self.next_try:
            return False
        db = self._connect()
        if db is None:
            return False
        try:
            with db.begin() as connection:
                store.write_requests(connection, rows)
        except Exception as error:
            self._down(store.StoreError(str(getattr(error, "orig", error)).strip().splitlines()[0]))
            return False
        self.next_try = 0.0
        self.written += sum(row["records"] for row in rows)
        return True

    def _spool(self, rows: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(store.to_json_safe(row), separators=(",", ":")) + "\n" for row in rows)
        with self.spool_lock, self.spool_file.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        self.spooled += sum(row["records"] for row in rows)

    def _claim_orphans(self) -> None:
        """Spool files of workers that are gone (a crash, a restart) become this worker's to write back."""
        for path in sorted(self.spool_dir.iterdir()):
            owner = path.name.split("-", 1)[0]
            if path.suffix not in {".jsonl", ".claimed"} or path == self.spool_file:
                continue
            if owner.isdigit() and _alive(int(owner)):  # a live worker's (or this one's own) file
                continue
            with contextlib.suppress(FileNotFoundError):  # another worker claimed it first
                path.rename(self.spool_dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.claimed")

    def _replay_spool(self) -> None:
        if time.monotonic() < self.next_try:
            return
        with self.spool_lock:
            if self.spool_file.exists():
                self.spool_file.rename(self.spool_file.with_suffix(f".{uuid.uuid4().hex[:8]}.claimed"))
        mine = f"{os.getpid()}-"
        for path in sorted(self.spool_dir.glob(f"{mine}*.claimed")):
            lines = path.read_text(encoding="utf-8").splitlines()
            rows = [store.from_json_safe(json.loads(line)) for line in lines if line.strip()]
            for start in range(0, len(rows), SPOOL_BATCH):
                if not self._write(rows[start : start + SPOOL_BATCH]):
                    return  # still down: the file stays, and is tried again later
            path.unlink()
            logger.info("prediction log: wrote %d spooled requests back to the database", len(rows))

    # --- shutdown ------------------------------------------------------------------------------------------------

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (to the database, else to the spool) and stop the thread."""
        if not self.thread.is_alive():
            return
        self.queue.put(_STOP)
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            logger.warning("prediction log: flush did not finish in %.0fs; the spool keeps the rest", timeout_s)
        if self.db is not None:
            self.db.dispose()

    def pending(self) -> int:
        """Requests not yet in the database: queued entries plus spooled rows on disk."""
        on_disk = 0
        for path in self.spool_dir.glob(f"{os.getpid()}-*"):
            with contextlib.suppress(FileNotFoundError):
                on_disk += sum(1 for _ in path.open(encoding="utf-8"))
        return self.queue.qsize() + on_disk
