"""The monitoring database (MONITORING_DB_URL): its engine, its tables, and the reads and writes its users share."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from mltemplate.errors import Error
from mltemplate.monitoring import codec
from mltemplate.paths import MONITORING_DB_URL, SPOOL_DIR

ENV_URL = "MONITORING_DB_URL"
ENV_SPOOL = "MONITORING_SPOOL_DIR"
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite statement waits for another writer's lock (`make monitor` and the workers share the file)."""
# A PostgreSQL peer that vanishes (a partition, a dead node) is noticed within about 30 s instead of never: TCP
# keepalives probe an idle connection, and unacknowledged data fails it (libpq's tcp_user_timeout, Linux).
POSTGRES_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}

metadata = sa.MetaData()

# The tables as the last migration leaves them: migrations.py creates them, one step per schema version. A shipped
# table changes only through a new step there.

schema_version = sa.Table("monitoring_schema", metadata, sa.Column("version", sa.Integer, nullable=False))

# Schema version 1 and 2 logged one row per record; migration 3 moves those rows into `requests` and drops it.
legacy_predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, doc="The record's index in its request."),
    sa.Column("ts", sa.Float, nullable=False, index=True, doc="Seconds since the epoch (UTC) of the answer."),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("label", sa.String(256), nullable=False),
    sa.Column("probabilities", sa.JSON, nullable=False),
)

# Schema version 1 to 3 kept one label per record, keyed like the log; migration 4 moves them into `labels`.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("label", sa.String(256), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
)

monitor_runs = sa.Table(
    "monitor_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("window_end", sa.Float, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("labelled", sa.Integer, nullable=False),
    sa.Column("breaches", sa.JSON, nullable=False, doc="Keys of the checks that breached in this run."),
    sa.Column("alerts", sa.JSON, nullable=False, doc="Keys that fired after debouncing."),
    sa.Column("results", sa.JSON, nullable=False, doc="Every check's value and threshold."),
)

retrained = sa.Table(
    "retrained",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("ts", sa.Float, nullable=False, doc="When `make retrain` appended the record to the training CSV."),
)

requests = sa.Table(
    "prediction_requests",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False, index=True, doc="Seconds since the epoch (UTC) of the answer."),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("records", sa.Integer, nullable=False, doc="How many records the request held (positions 0..n-1)."),
    sa.Column("columns", sa.JSON, nullable=False, doc='{"numeric": [...], "categorical": [...], "outputs": [...]}'),
    sa.Column(
        "numeric", sa.LargeBinary, nullable=False, doc="records x numeric features, little-endian float64, NaN = null."
    ),
    sa.Column("categorical", sa.JSON, nullable=False, doc="One list of values (text or null) per categorical feature."),
    sa.Column("labels", sa.JSON, nullable=True, doc="The predicted label of each record; null for regression."),
    sa.Column(
        "outputs",
        sa.LargeBinary,
        nullable=False,
        doc="records x outputs, little-endian float64: class probabilities, or the predicted value (regression).",
    ),
    sa.Column(
        "client_request_id",
        sa.String(64),
        nullable=True,
        doc="The client's X-Request-ID, if it sent one: a correlation field, never the key (the service makes that).",
    ),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True, doc="Arrival order: a record's last one counts."),
    sa.Column(
        "request_id",
        sa.String(64),
        nullable=False,
        doc="The service's id of the answer. Not a foreign key: a label may arrive before the log writes its request.",
    ),
    sa.Column("position", sa.Integer, nullable=False, doc="The record's index in its request."),
    sa.Column("label", sa.String(256), nullable=False),
    sa.Column("labeller", sa.String(32), nullable=False, doc="Who sent it: the feedback credential's name."),
    sa.Column(
        "submission", sa.String(64), nullable=False, doc="The call it came in: the client's submission id, or a digest."
    ),
    sa.Column("ts", sa.Float, nullable=False, doc="When it was stored, seconds since the epoch (UTC)."),
    # A submission stores each of its labels once, however often it is sent (a retry after a timeout, a replay).
    sa.UniqueConstraint("labeller", "submission", "request_id", "position", name="labels_once_per_submission"),
    sa.Index("labels_by_record", "request_id", "position"),
)

TRUTH = "__truth__"
LABELLER = "__labeller__"
"""The true label's and its labeller's columns in `read_labels`."""
LEGACY_LABELLER = "unauthenticated"
"""The labeller of labels stored before POST /feedback took credentials (schema version 3 and older)."""


class StoreError(Error, RuntimeError):
    """The monitoring database cannot be reached, or its URL is not one SQLAlchemy understands."""


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """MONITORING_DB_URL, else the SQLite file under monitoring/."""
    environ = os.environ if environ is None else environ
    return environ.get(ENV_URL) or MONITORING_DB_URL


def spool_dir(environ: Mapping[str, str] | None = None) -> Path:
    """MONITORING_SPOOL_DIR, else monitoring/spool: where the service keeps records while the database is down."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(ENV_SPOOL) or SPOOL_DIR)


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    # WAL: the service's workers write while `make monitor` reads, without "database is locked".
    cursor = connection.cursor()
    # A new file only (set before WAL; a no-op later): a logged 256-record request is ~64 KiB of arrays, which
    # 4 KiB pages split into 16 overflow pages, each its own WAL frame; 16 KiB pages cut the writer's CPU by a third.
    cursor.execute("PRAGMA page_size=16384")
    _switch_to_wal(cursor)
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _switch_to_wal(cursor: Any, *, wait_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> None:
    # Switching a new file to WAL takes it exclusively, and when several processes switch it at once SQLite fails
    # the losers at once ("database is locked") instead of waiting the busy timeout: the service's workers and
    # `make monitor` opening a new log together met it. They retry, jittered so they do not collide again, until
    # the winner's switch is done; after that the pragma takes no lock.
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))  # noqa: S311 (jitter, not a secret)
        pause = min(pause * 2, 0.5)


def engine(url: str, *, connect_timeout_s: int = 5, hold_files: bool = True) -> Engine:
    """An engine for `url`: SQLite files get their directory and WAL mode; PostgreSQL a short connect timeout,
    so a database that is down fails fast instead of holding the writer. `hold_files=False` closes a SQLite file
    after each transaction (no pool): a writer that holds no file open between writes meets a volume remounted
    read-only, replaced or full afresh at its next write, and does not keep the volume busy."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"{ENV_URL}={url!r} is not a SQLAlchemy URL (e.g. sqlite:///monitoring/predictions.db, "
            "postgresql://user@host/db)"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is installed; psycopg2 is not
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(f"{ENV_URL}: cannot create the directory of {parsed.database}: {error}") from None
        connect_args["timeout"] = 30
    elif parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = connect_timeout_s
        connect_args.update(POSTGRES_KEEPALIVES)
    try:
        pooling: dict[str, Any] = {"pool_pre_ping": True}
        if not hold_files and parsed.get_backend_name() == "sqlite":
            pooling = {"poolclass": sa.pool.NullPool}
        created = sa.create_engine(parsed, connect_args=connect_args, **pooling)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise StoreError(f"{ENV_URL}: cannot use {parsed.render_as_string(hide_password=True)}: {error}") from None
    if created.dialect.name == "sqlite":
        sa.event.listen(created, "connect", _sqlite_pragmas)
    return created


def bound_statements(connection: Connection, seconds: float) -> None:
    """Make the statements of this transaction fail after `seconds` instead of waiting on a slow, locked or busy
    database: PostgreSQL's statement_timeout and lock_timeout (for this transaction only), SQLite's busy timeout."""
    milliseconds = max(1, int(seconds * 1000))
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"SET LOCAL statement_timeout = {milliseconds}"))
        connection.execute(sa.text(f"SET LOCAL lock_timeout = {milliseconds}"))
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA busy_timeout={milliseconds}")


def insert_ignoring_duplicates(table: sa.Table, connection: Connection) -> Any:
    """INSERT that skips rows whose primary key exists: replaying a batch (after a lost commit acknowledgement or
    from the spool) then stores each record exactly once."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise StoreError(f"no insert-or-ignore for {connection.dialect.name}; use SQLite or PostgreSQL")


def write_requests(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert encoded requests; a request id already logged is skipped (a replay stores nothing twice)."""
    if rows:
        connection.execute(insert_ignoring_duplicates(requests, connection), list(rows))


def write_predictions(connection: Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Insert per-record dicts (see `codec.encode_records`)."""
    try:
        rows = codec.encode_records(records)
    except codec.CodecError as error:
        raise StoreError(str(error)) from None
    write_requests(connection, rows)


def read_records(connection: Connection, *where: Any) -> pd.DataFrame:
    """The records of the logged requests that match `where` (clauses on `requests`), in the order they were
    answered: one row each (see `decode`). Requests logged under other columns (another model's schema) keep
    theirs; a feature they lack is NaN."""
    query = sa.select(requests).where(*where).order_by(requests.c.ts, requests.c.request_id)
    by_columns: dict[str, list[Any]] = {}
    for row in connection.execute(query):
        by_columns.setdefault(repr(row.columns), []).append(row)
    if len(by_columns) <= 1:
        return codec.decode(next(iter(by_columns.values()), []))
    frame = pd.concat([codec.decode(rows) for rows in by_columns.values()], ignore_index=True, sort=False)
    return frame.sort_values([codec.TS, codec.REQUEST_ID, codec.POSITION], kind="stable", ignore_index=True)


def counted_labels(labellers: Sequence[str] | None = None) -> Any:
    """The label that counts for each labelled record, as a subquery (request_id, position, label, labeller): the one
    that reached the service last (`ts`; on a tie, the one stored last), among `labellers` when given. The earlier
    ones stay in the table as the record's history."""
    l = labels.c  # noqa: E741
    order = sa.func.row_number().over(partition_by=(l.request_id, l.position), order_by=(l.ts.desc(), l.id.desc()))
    ranked = sa.select(l.request_id, l.position, l.label, l.labeller, order.label("rank"))
    if labellers is not None:
        ranked = ranked.where(l.labeller.in_(list(labellers)))
    last = ranked.subquery()
    return (
        sa.select(last.c.request_id, last.c.position, last.c.label, last.c.labeller).where(last.c.rank == 1).subquery()
    )


def read_labels(connection: Connection, query: Any) -> pd.DataFrame:
    """The true labels that `query` (request_id, position, label, labeller: see `counted_labels`) selects, with the
    REQUEST_ID and POSITION columns of `read_records`, so the two merge, then TRUTH and LABELLER."""
    found = pd.DataFrame(
        connection.execute(query).all(), columns=[codec.REQUEST_ID, codec.POSITION, TRUTH, LABELLER], dtype=object
    )
    found[codec.POSITION] = found[codec.POSITION].astype(int)
    return found


def count_predictions(db: Engine) -> int:
    """How many records the log holds."""
    with db.connect() as connection:
        return int(connection.execute(sa.select(sa.func.coalesce(sa.func.sum(requests.c.records), 0))).scalar() or 0)


def request_positions(connection: Connection, request_ids: Iterable[str]) -> dict[str, int]:
    """For each logged request id among `request_ids`, how many records it held."""
    ids = sorted(set(request_ids))
    found: dict[str, int] = {}
    for start in range(0, len(ids), 500):  # keep IN lists short for every database
        chunk = ids[start : start + 500]
        query = sa.select(requests.c.request_id, requests.c.records).where(requests.c.request_id.in_(chunk))
        found.update({str(rid): int(n) for rid, n in connection.execute(query)})
    return found
