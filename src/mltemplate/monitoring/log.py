"""The service's prediction log writer. The request path only adds a tuple to the pending entries; two threads store
them: the writer batches them into the database (codec.encode, statements bounded by a timeout), and the spooler
appends to a spool on local disk (spool.py) whatever has waited longer than the database normally takes, so that
a database that hangs, refuses or is slow costs nothing but disk. An entry leaves memory only once the database or
the spool holds it; when both refuse it waits, and only when the memory bound is reached are new entries dropped,
counted and logged as errors. Inserts ignore duplicate request ids, so an entry stored in both is stored once.
`close()` (the service's shutdown hook, on SIGTERM) gives the database a moment, then spools the rest."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mltemplate.monitoring import codec, migrations, store
from mltemplate.monitoring.spool import Spool
from mltemplate.paths import SPOOL_DIR

logger = logging.getLogger(__name__)

Entry = tuple[str, float, str, codec.Rows, Sequence[str] | None, Any, str | None]
"""(request_id, time, model_version, rows in feature order, labels (None for regression), outputs: records x
outputs numbers, the client's X-Request-ID or None)."""
DROP_LOG_INTERVAL_S = 10.0


class Pending:
    """Entries stored nowhere yet, oldest first, at most `max_records` records; the writer and the spooler each
    remove what they stored."""

    def __init__(self, max_records: int) -> None:
        self.max_records = max_records
        self.records = 0
        self.entries: dict[int, tuple[float, Entry]] = {}
        self.next = 0
        self.lock = threading.Lock()

    def add(self, entry: Entry) -> bool:
        count = len(entry[3])
        with self.lock:
            if self.records + count > self.max_records:
                return False
            self.entries[self.next] = (time.monotonic(), entry)
            self.next += 1
            self.records += count
        return True

    def oldest(self, max_records: int, *, added_before: float | None = None) -> list[tuple[int, Entry]]:
        """Up to `max_records` records' entries (always one at least), oldest first; only those added before
        `added_before` (time.monotonic()) when given."""
        taken: list[tuple[int, Entry]] = []
        size = 0
        with self.lock:
            for key, (added, entry) in self.entries.items():
                young = added_before is not None and added >= added_before
                if young or (taken and size + len(entry[3]) > max_records):
                    break
                taken.append((key, entry))
                size += len(entry[3])
        return taken

    def remove(self, keys: Sequence[int]) -> None:
        with self.lock:
            for key in keys:
                found = self.entries.pop(key, None)
                if found is not None:
                    self.records -= len(found[1][3])


class PredictionLog:
    """`record(...)` never blocks and never raises; the threads do the rest. One per service worker."""

    def __init__(
        self,
        url: str,
        *,
        columns: codec.Columns,
        spool_dir: Path = SPOOL_DIR,
        spool_max_bytes: int = 64 * 2**20,
        max_queued_records: int = 100_000,
        batch_rows: int = 10_000,
        flush_interval_s: float = 0.2,
        retry_interval_s: float = 1.0,
        spool_after_s: float = 1.0,
        statement_timeout_s: float = 5.0,
        on_spooled: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.url = url
        self.columns = columns
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self.pending = Pending(max_queued_records)
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self.spool_after_s = spool_after_s
        self.statement_timeout_s = statement_timeout_s
        self.on_spooled = on_spooled
        self.on_dropped = on_dropped
        self.db: sa.Engine | None = None
        self.next_try = 0.0
        self.written = 0  # records, as are the spooled and the dropped
        self.spooled = 0
        self.dropped = 0
        self.unlogged_drops = 0
        self.last_drop_log = 0.0
        self.spool_refused = False
        self.stopping = threading.Event()
        self.writer = threading.Thread(target=self._run_writer, name="prediction-log-writer", daemon=True)
        self.spooler = threading.Thread(target=self._run_spooler, name="prediction-log-spooler", daemon=True)
        self.writer.start()
        self.spooler.start()

    # --- the request path --------------------------------------------------------------------------------------

    def record(
        self,
        request_id: str,
        model_version: str,
        rows: codec.Rows,
        labels: Sequence[str] | None,
        outputs: Any,
        *,
        client_request_id: str | None = None,
    ) -> None:
        """`rows` in `columns` order (numeric features, then categorical; tuples, or a frame), a label per row (None
        for regression), and the outputs (class probabilities, or the predicted values) as an array or nested lists;
        `request_id` is the service's, `client_request_id` the client's X-Request-ID (kept beside it)."""
        entry: Entry = (request_id, time.time(), model_version, rows, labels, outputs, client_request_id)
        if not self.pending.add(entry):
            self._drop(len(rows))

    def _drop(self, records: int) -> None:
        """Memory is full because neither the database nor the disk takes entries: say so, loudly but not per
        request (once per DROP_LOG_INTERVAL_S, with the count)."""
        self.dropped += records
        self.unlogged_drops += records
        if self.on_dropped is not None:
            self.on_dropped(records)
        now = time.monotonic()
        if now - self.last_drop_log >= DROP_LOG_INTERVAL_S:
            self.last_drop_log = now
            logger.error(
                "prediction log: DROPPED %d answered records: the database and the spool (%s) both refuse and "
                "%d records wait in memory (the limit)",
                self.unlogged_drops,
                self.spool.directory,
                self.pending.max_records,
            )
            self.unlogged_drops = 0

    # --- encoding and the database -------------------------------------------------------------------------------

    def _rows(self, entries: Sequence[Entry]) -> list[dict[str, Any]]:
        out = []
        for request_id, ts, version, rows, labels, outputs, client in entries:
            try:
                out.append(
                    codec.encode(request_id, ts, version, self.columns, rows, labels, outputs, client_request_id=client)
                )
            except Exception:  # a malformed entry is the service's bug: say so, keep logging the others
                logger.exception("prediction log: could not encode request %s", request_id)
        return out

    def _connect(self) -> sa.Engine | None:
        if self.db is None:
            try:
                # Between writes the log holds no file open: a volume remounted read-only or full is met afresh.
                self.db = migrations.open_store(self.url, hold_files=False)
            except Exception as error:  # whatever the driver raises: the service must keep answering
                self._down(error)
                return None
        return self.db

    def _down(self, error: BaseException) -> None:
        if self.next_try == 0.0 or logger.isEnabledFor(logging.DEBUG):
            logger.warning("prediction log: database unavailable (%s); spooling to %s", error, self.spool.directory)
        self.next_try = time.monotonic() + self.retry_interval_s

    def _write(self, rows: list[dict[str, Any]], *, retry_now: bool = False) -> bool:
        if not retry_now and time.monotonic() < self.next_try:
            return False
        db = self._connect()
        if db is None:
            return False
        try:
            with db.begin() as connection:
                store.bound_statements(connection, self.statement_timeout_s)
                store.write_requests(connection, rows)
        except Exception as error:
            self._down(store.StoreError(str(getattr(error, "orig", error)).strip().splitlines()[0]))
            return False
        self.next_try = 0.0
        self.written += sum(row["records"] for row in rows)
        return True

    # --- the threads -----------------------------------------------------------------------------------------------

    def _flush(self, *, retry_now: bool = False) -> None:
        """Pending entries to the database in transactions of about batch_rows records, until none is left or
        the database refuses."""
        while batch := self.pending.oldest(self.batch_rows):
            rows = self._rows([entry for _, entry in batch])
            if rows and not self._write(rows, retry_now=retry_now):
                return
            self.pending.remove([key for key, _ in batch])
            retry_now = False

    def _run_writer(self) -> None:
        self.spool.claim_orphans()
        while not self.stopping.wait(self.flush_interval_s):
            try:
                self._flush()
                if self.spool.bytes and time.monotonic() >= self.next_try:
                    self.spool.replay(self._write)
            except Exception:  # a bug of ours: log it and keep the writer alive for what comes next
                logger.exception("prediction log: the writer failed; it goes on")
        self._flush(retry_now=True)  # on close: what arrived since, one more try even after a failure

    def _spool_pending(self, *, added_before: float | None) -> None:
        while batch := self.pending.oldest(self.batch_rows, added_before=added_before):
            rows = self._rows([entry for _, entry in batch])
            if not self.spool.append(rows):
                if not self.spool_refused:
                    logger.error(
                        "prediction log: the spool (%s) refuses writes (full or read-only?); %d records wait in memory",
                        self.spool.directory,
                        self.pending.records,
                    )
                self.spool_refused = True
                return
            self.spool_refused = False
            self.pending.remove([key for key, _ in batch])
            records = sum(row["records"] for row in rows)
            self.spooled += records
            if self.on_spooled is not None:
                self.on_spooled(records)

    def _run_spooler(self) -> None:
        while not self.stopping.wait(self.spool_after_s / 2):
            try:
                self._spool_pending(added_before=time.monotonic() - self.spool_after_s)
            except Exception:
                logger.exception("prediction log: the spooler failed; it goes on")

    # --- shutdown ------------------------------------------------------------------------------------------------

    def close(self, timeout_s: float = 10.0) -> None:
        """Store what is pending: the database gets a third of `timeout_s`, the spool takes the rest; what neither
        took by then is dropped, and said. Idempotent."""
        if self.stopping.is_set():
            return
        deadline = time.monotonic() + timeout_s
        self.stopping.set()
        self.writer.join(timeout_s / 3)
        self.spooler.join(max(0.0, deadline - time.monotonic()))
        while self.pending.records and time.monotonic() < deadline:
            self._spool_pending(added_before=None)
            if self.pending.records:
                time.sleep(0.2)  # the disk refuses: it may come back before the pod is killed
        left = self.pending.records
        if left:
            self.unlogged_drops, self.last_drop_log = 0, 0.0
            self._drop(left)
        if self.db is not None and not self.writer.is_alive():  # a writer stuck in the driver keeps its connection
            self.db.dispose()

    def waiting_records(self) -> int:
        """Records not yet in the database: pending ones plus spooled ones (reads the spool: not for the hot path)."""
        return self.pending.records + self.spool.records()
