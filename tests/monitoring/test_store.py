"""The monitoring database: its URL from the environment, duplicates ignored, records read back in answer order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from mltemplate.monitoring import codec, migrations, store


@pytest.fixture
def db(tmp_path: Path) -> sa.Engine:
    return migrations.open_store(f"sqlite:///{tmp_path / 'sub' / 'log.db'}")


def row(request_id: str, position: int = 0) -> dict[str, object]:
    return {
        "request_id": request_id,
        "position": position,
        "ts": 1.0,
        "model_version": "v1",
        "features": {"x": 1.0},
        "label": "a",
        "probabilities": {"a": 0.9, "b": 0.1},
    }


def test_a_replayed_row_is_stored_once(db: sa.Engine) -> None:
    for _ in range(2):
        with db.begin() as connection:
            store.write_predictions(connection, [row("r1"), row("r1", 1)])
    assert store.count_predictions(db) == 2


def test_records_whose_positions_leave_a_gap_are_refused_and_nothing_is_stored(db: sa.Engine) -> None:
    with pytest.raises(store.StoreError, match=r"request 'r1': positions are not 0\.\.1"), db.begin() as connection:
        store.write_predictions(connection, [row("r1"), row("r1", 2)])
    assert store.count_predictions(db) == 0


def test_request_positions_counts_records_per_logged_request(db: sa.Engine) -> None:
    with db.begin() as connection:
        store.write_predictions(connection, [row("r1"), row("r1", 1), row("r2")])
        assert store.request_positions(connection, ["r1", "r2", "r3"]) == {"r1": 2, "r2": 1}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "sqlite:///monitoring/predictions.db"),
        ({"MONITORING_DB_URL": "postgresql://u@h/db"}, "postgresql://u@h/db"),
    ],
)
def test_database_url_comes_from_the_environment(environ: dict[str, str], expected: str) -> None:
    assert store.database_url(environ) == expected


def test_a_malformed_url_names_the_variable() -> None:
    with pytest.raises(store.StoreError, match="MONITORING_DB_URL='not a url' is not a SQLAlchemy URL"):
        store.engine("not a url")


def test_requests_logged_under_another_schema_keep_their_columns_in_answer_order(db: sa.Engine) -> None:
    old = codec.Columns(numeric=("x",), categorical=(), outputs=("no", "yes"))
    new = codec.Columns(numeric=("x", "z"), categorical=(), outputs=("no", "yes"))
    with db.begin() as connection:
        store.write_requests(
            connection,
            [
                codec.encode("late", 3.0, "v1", old, [(3.0,)], ["no"], [[0.9, 0.1]]),
                codec.encode("first", 1.0, "v1", old, [(1.0,)], ["no"], [[0.9, 0.1]]),
                codec.encode("middle", 2.0, "v2", new, [(2.0, 7.0)], ["yes"], [[0.2, 0.8]]),
            ],
        )
        frame = store.read_records(connection)
    assert frame[codec.REQUEST_ID].tolist() == ["first", "middle", "late"]
    assert frame["x"].tolist() == [1.0, 2.0, 3.0]
    assert frame["z"].isna().tolist() == [True, False, True]


class _Racing:
    """A cursor whose switch to WAL loses a race with other processes `losses` times, as SQLite reports it."""

    def __init__(self, losses: int, message: str = "database is locked") -> None:
        self.losses, self.message, self.tries = losses, message, 0

    def execute(self, statement: str) -> None:
        self.tries += 1
        if self.tries <= self.losses:
            raise sqlite3.OperationalError(self.message)


def test_a_process_that_loses_the_race_to_switch_a_new_file_to_wal_retries_until_it_is_done() -> None:
    cursor = _Racing(losses=3)
    store._switch_to_wal(cursor, wait_s=5)
    assert cursor.tries == 4


def test_the_switch_to_wal_gives_up_after_its_wait_and_at_once_on_other_errors() -> None:
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store._switch_to_wal(_Racing(losses=10**6), wait_s=0.05)
    unwritable = _Racing(losses=1, message="attempt to write a readonly database")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store._switch_to_wal(unwritable, wait_s=5)
    assert unwritable.tries == 1
