"""Storing true labels in the `labels` table, each submission once however often it is sent, every label kept as the
record's history (which one counts: store.counted_labels); and the service's labels spool: labels accepted while the
database is down wait in a file on local disk and are written back by a thread once it answers."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mltemplate.errors import Error
from mltemplate.monitoring import migrations, spool, store
from mltemplate.monitoring.feedback import Resolved

logger = logging.getLogger(__name__)


class SubmissionConflict(Error, ValueError):
    """A submission id already stored other labels for some of these records: a submission id is used once."""


class TooLate(Error, RuntimeError):
    """The caller gave up (its deadline passed) before the labels were committed: nothing was stored."""


def _rows(labels: Sequence[Resolved], *, labeller: str, submission: str, ts: float) -> list[dict[str, Any]]:
    return [
        {"request_id": x.request_id, "position": x.position, "label": x.label, "labeller": labeller}
        | {"submission": submission, "ts": ts}
        for x in labels
    ]


def store_labels(
    db: sa.Engine,
    labels: Sequence[Resolved],
    *,
    labeller: str,
    submission: str,
    ts: float | None = None,
    abandoned: Callable[[], bool] = lambda: False,
) -> int:
    """Store `labels` as `labeller`'s submission `submission`, in one transaction: labels this submission already
    stored are not stored again, and a submission that stored another label for one of these records is refused
    (SubmissionConflict). When `abandoned()` says so just before the commit, nothing is stored (TooLate). Returns how
    many of the submission's labels are stored after the call."""
    rows = _rows(labels, labeller=labeller, submission=submission, ts=time.time() if ts is None else ts)
    with db.begin() as connection:
        insert = store.insert_ignoring_duplicates(store.labels, connection)
        for start in range(0, len(rows), 1000):
            connection.execute(insert, rows[start : start + 1000])
        # Read back after the insert: a concurrent call with the same submission id has committed by now (the
        # insert waited for it), so what is there is what counts, whichever call wrote it.
        l = store.labels.c  # noqa: E741
        query = sa.select(l.request_id, l.position, l.label).where(l.labeller == labeller, l.submission == submission)
        stored = {(rid, int(pos)): label for rid, pos, label in connection.execute(query)}
        clashes = [x for x in labels if stored.get((x.request_id, x.position), x.label) != x.label]
        if clashes:
            first = clashes[0]
            was = stored[(first.request_id, first.position)]
            raise SubmissionConflict(
                f"submission {submission!r} already stored {was!r} for record {first.request_id!r}/{first.position}, "
                f"not {first.label!r} (+{len(clashes) - 1} more); send other labels under a new submission_id"
            )
        if abandoned():
            raise TooLate("the call was given up before its labels were committed; nothing was stored")
    return sum((x.request_id, x.position) in stored for x in labels)


class LabelSpool:
    """Accepted labels the database could not take, one JSON line per submission in a file of this worker's under
    `directory`; a thread writes them back (each submission once: the table's unique key) and takes over the files
    of workers that are gone."""

    def __init__(self, url: str, directory: Path, *, retry_interval_s: float = 1.0) -> None:
        self.url, self.directory, self.retry_interval_s = url, directory, retry_interval_s
        self.directory.mkdir(parents=True, exist_ok=True)
        self.file = directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self.lock = threading.Lock()
        self.db: sa.Engine | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="label-spool", daemon=True)
        self.thread.start()

    def add(self, labels: Sequence[Resolved], *, labeller: str, submission: str, ts: float) -> None:
        """Keep one submission's labels on disk (fsynced before returning); OSError when the disk refuses."""
        line = json.dumps({"rows": _rows(labels, labeller=labeller, submission=submission, ts=ts)}) + "\n"
        with self.lock, self.file.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> int:
        """Submissions on disk, this worker's and any other's."""
        count = 0
        for path in self.directory.glob("*.*"):
            with contextlib.suppress(FileNotFoundError):
                count += sum(1 for line in path.open(encoding="utf-8") if line.strip())
        return count

    def _run(self) -> None:
        while not self.stopping.wait(self.retry_interval_s):
            try:
                self.replay()
            except Exception as error:  # a database still down, a full disk: keep the files, try again later
                logger.debug("label spool: not written back yet (%s)", error)

    def _claim(self) -> list[Path]:
        """This worker's file and the files of workers that are gone, renamed to be this worker's to write back."""
        mine = f"{os.getpid()}-"
        with self.lock:
            if self.file.exists():
                self.file.rename(self.directory / f"{mine}{uuid.uuid4().hex[:8]}.claimed")
        for path in self.directory.iterdir():
            owner = path.name.split("-", 1)[0]
            if path.suffix not in {".jsonl", ".claimed"} or (owner.isdigit() and spool.alive(int(owner))):
                continue  # not a spool file, or a live worker's (this one's included)
            with contextlib.suppress(FileNotFoundError):  # another worker took it first
                path.rename(self.directory / f"{mine}{uuid.uuid4().hex[:8]}.claimed")
        return sorted(self.directory.glob(f"{mine}*.claimed"))

    def replay(self) -> int:
        """Write the spooled submissions back; returns how many. Raises (keeping the files) when the database fails."""
        claimed = self._claim()
        if not claimed:
            return 0
        if self.db is None:
            self.db = migrations.open_store(self.url)
        written = 0
        for path in claimed:
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            with self.db.begin() as connection:
                insert = store.insert_ignoring_duplicates(store.labels, connection)
                for line in lines:
                    try:
                        rows = json.loads(line)["rows"]
                    except (ValueError, KeyError):
                        logger.warning("label spool: %s holds a line that is not a submission (cut short?)", path)
                        continue
                    connection.execute(insert, rows)
            path.unlink()
            written += len(lines)
        if written:
            logger.info("label spool: wrote %d submission(s) back to the database", written)
        return written

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        if self.db is not None:
            self.db.dispose()
