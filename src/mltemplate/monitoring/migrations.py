"""The monitoring database's schema over time: creates and updates its tables, one step per version, and opens it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mltemplate.monitoring import store

# Append a function to change the schema; never edit one that has shipped.


def _v1(connection: Connection) -> None:
    for table in (store.legacy_predictions, store.feedback, store.monitor_runs):
        table.create(connection, checkfirst=True)


def _v2(connection: Connection) -> None:
    # Added with `make retrain`: which labelled records the training data already holds, so none is added twice.
    store.retrained.create(connection, checkfirst=True)


def _v3(connection: Connection) -> None:
    # One row per request instead of per record: the service's cost of logging drops about fifty-fold.
    store.requests.create(connection, checkfirst=True)
    if sa.inspect(connection).has_table(store.legacy_predictions.name):
        for batch in _legacy_batches(connection):
            store.write_predictions(connection, batch)
        store.legacy_predictions.drop(connection)


def _legacy_batches(connection: Connection, page: int = 20_000) -> Iterator[list[dict[str, Any]]]:
    """The per-record rows of schema version 2 in pages that end on a request boundary."""
    p = store.legacy_predictions
    after: tuple[str, int] | None = None
    carry: list[dict[str, Any]] = []
    while True:
        query = sa.select(p).order_by(p.c.request_id, p.c.position).limit(page)
        if after is not None:
            query = query.where(sa.tuple_(p.c.request_id, p.c.position) > sa.tuple_(*after))
        rows = [dict(row._mapping) for row in connection.execute(query)]
        if not rows:
            if carry:
                yield carry
            return
        after = (rows[-1]["request_id"], rows[-1]["position"])
        rows = carry + rows
        last = rows[-1]["request_id"]
        carry = [row for row in rows if row["request_id"] == last]
        done = rows[: len(rows) - len(carry)]
        if done:
            yield done


def _v4(connection: Connection) -> None:
    # Labels on their own, keyed by nothing the log holds (a label may arrive before its request is written), each
    # with who sent it and every one kept; and the client's X-Request-ID beside the key the service now makes.
    store.labels.create(connection, checkfirst=True)
    logged = {column["name"] for column in sa.inspect(connection).get_columns(store.requests.name)}
    if "client_request_id" not in logged:
        connection.execute(sa.text(f"ALTER TABLE {store.requests.name} ADD COLUMN client_request_id VARCHAR(64)"))
    if sa.inspect(connection).has_table(store.feedback.name):
        f = store.feedback
        moved = sa.select(
            f.c.request_id, f.c.position, f.c.label, sa.literal(store.LEGACY_LABELLER), sa.literal("migrated"), f.c.ts
        ).order_by(f.c.ts, f.c.request_id, f.c.position)
        columns = ["request_id", "position", "label", "labeller", "submission", "ts"]
        connection.execute(store.labels.insert().from_select(columns, moved))
        f.drop(connection)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4]
"""MIGRATIONS[i] takes a database from version i to i + 1."""


def version(connection: Connection) -> int:
    if not sa.inspect(connection).has_table(store.schema_version.name):
        return 0
    return int(connection.execute(sa.select(sa.func.max(store.schema_version.c.version))).scalar() or 0)


def migrate(db: Engine, *, attempts: int = 3) -> int:
    """Bring the database to the latest schema (idempotent). Returns the version it is at. Several processes may
    start at once: PostgreSQL serialises them with a lock; on SQLite the loser of a race retries and finds the work
    done."""
    for attempt in range(attempts):
        try:
            return _migrate_once(db)
        except sa.exc.SQLAlchemyError as error:
            if attempt == attempts - 1:
                raise store.StoreError(f"cannot migrate {_where(db)}: {_reason(error)}") from None
    raise AssertionError("unreachable")


def _migrate_once(db: Engine) -> int:
    with db.begin() as connection:
        # One migrator at a time; the others wait, then find nothing left to do.
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(872341)"))
        elif connection.dialect.name == "sqlite":
            # The driver runs DDL outside any transaction, so two processes' CREATE TABLEs interleave ("table ...
            # already exists"); the write lock, taken first, makes the whole migration one transaction.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        store.schema_version.create(connection, checkfirst=True)
        current = version(connection)
        if current > len(MIGRATIONS):
            raise store.StoreError(
                f"the database is at schema version {current}, newer than this code's {len(MIGRATIONS)}: "
                "upgrade the code"
            )
        for step in MIGRATIONS[current:]:
            step(connection)
        if current < len(MIGRATIONS):
            connection.execute(store.schema_version.delete())
            connection.execute(store.schema_version.insert().values(version=len(MIGRATIONS)))
        return len(MIGRATIONS)


def _where(db: Engine) -> str:
    return db.url.render_as_string(hide_password=True)


def _reason(error: BaseException) -> str:
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


def open_store(url: str | None = None, *, hold_files: bool = True) -> Engine:
    """An engine on MONITORING_DB_URL (or `url`), migrated to the current schema (see store.engine for
    `hold_files`)."""
    db = store.engine(url or store.database_url(), hold_files=hold_files)
    migrate(db)
    return db
