"""The service's prediction log writer: the request path only enqueues a tuple; a background thread encodes each
request as one row (codec.encode) and batches them into the database, and when the database is down or slow it
appends them to a spool file on local disk and writes them back once the database answers again. Inserts ignore
duplicate request ids, so a replayed batch is stored once. `close()` (the service's shutdown hook, on SIGTERM)
flushes what is queued."""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mltemplate.monitoring import codec, migrations, store
from mltemplate.paths import SPOOL_DIR

logger = logging.getLogger(__name__)

Entry = tuple[str, float, str, codec.Rows, Sequence[str] | None, Any, str | None]
"""(request_id, time, model_version, rows in feature order, labels (None for regression), outputs: records x
outputs numbers, the client's X-Request-ID or None)."""

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
        columns: codec.Columns,
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
        # A deque, not a queue.Queue: appending wakes no one, so a request costs the worker no thread switch; the
        # thread looks every flush interval instead. Bounded in records, not requests (a 256-record request
        # holds 256 times the memory of a single one).
        self.queue: collections.deque[Entry] = collections.deque()
        self.stopping = threading.Event()
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
        with self.queued_lock:
            room = self.queued_records + len(rows) <= self.max_queued_records
            if room:
                self.queued_records += len(rows)
        if room:
            self.queue.append(entry)
        else:  # the thread is far behind (a database that hangs): keep the records on disk rather than drop them
            self._spool(self._rows([entry]))

    # --- the thread ----------------------------------------------------------------------------------------------

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

    def _take(self) -> list[Entry]:
        """Everything queued so far."""
        entries = []
        while self.queue:
            entries.append(self.queue.popleft())
        with self.queued_lock:
            self.queued_records -= sum(len(e[3]) for e in entries)
        return entries

    def _flush(self) -> None:
        """Write what is queued in transactions of about batch_rows records (a backlog after an outage goes in
        bounded pieces); what the database does not take goes to the spool."""
        batch: list[Entry] = []
        rows = 0
        for entry in self._take():
            if batch and rows + len(entry[3]) > self.batch_rows:
                self._store(batch)
                batch, rows = [], 0
            batch.append(entry)
            rows += len(entry[3])
        if batch:
            self._store(batch)

    def _store(self, batch: list[Entry]) -> None:
        encoded = self._rows(batch)
        if encoded and not self._write(encoded):
            self._spool(encoded)

    def _run(self) -> None:
        self._claim_orphans()
        while True:
            stopping = self.stopping.wait(self.flush_interval_s)
            try:
                self._flush()
                self._replay_spool()
            except Exception:  # the disk is full, say: log it and keep the writer alive for what comes next
                logger.exception("prediction log: the writer failed; it goes on")
            if stopping:
                self._flush()  # what arrived while the last batch was written
                return

    def _connect(self) -> sa.Engine | None:
        if self.db is None:
            if time.monotonic() < self.next_try:
                return None
            try:
                self.db = migrations.open_store(self.url)
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
        text = "".join(json.dumps(codec.to_json_safe(row), separators=(",", ":")) + "\n" for row in rows)
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
            rows = self._read_spool(path)
            for start in range(0, len(rows), SPOOL_BATCH):
                if not self._write(rows[start : start + SPOOL_BATCH]):
                    return  # still down: the file stays, and is tried again later
            path.unlink()
            logger.info("prediction log: wrote %d spooled requests back to the database", len(rows))

    @staticmethod
    def _read_spool(path: Path) -> list[dict[str, Any]]:
        """A spool file's rows. A line cut short (a crash while it was written) is skipped with a warning rather than
        stopping the writer; a line of a spool from before schema version 3 (a record, not a request) is encoded."""
        rows, records = [], []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                logger.warning("prediction log: %s line %d is not JSON (a write cut short?); skipped", path, number)
                continue
            if "features" in data:
                records.append(data)
            else:
                rows.append(codec.from_json_safe(data))
        return rows + codec.encode_records(records)

    # --- shutdown ------------------------------------------------------------------------------------------------

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (to the database, else to the spool) and stop the thread."""
        if not self.thread.is_alive():
            return
        self.stopping.set()
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
        return len(self.queue) + on_disk
