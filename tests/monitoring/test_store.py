"""The monitoring database: created and migrated by the code, duplicates ignored, URL from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from mltemplate.monitoring import store


@pytest.fixture
def db(tmp_path: Path) -> sa.Engine:
    return store.open_store(f"sqlite:///{tmp_path / 'sub' / 'log.db'}")


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


def test_open_store_creates_every_table_at_the_latest_version(db: sa.Engine) -> None:
    assert {"predictions", "feedback", "monitor_runs", "monitoring_schema"} <= set(sa.inspect(db).get_table_names())
    with db.connect() as connection:
        assert store.version(connection) == len(store.MIGRATIONS)


def test_migrate_twice_changes_nothing(db: sa.Engine) -> None:
    assert store.migrate(db) == len(store.MIGRATIONS)
    with db.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(store.schema_version)).scalar() == 1


def test_a_database_newer_than_the_code_is_refused(db: sa.Engine) -> None:
    with db.begin() as connection:
        connection.execute(store.schema_version.update().values(version=len(store.MIGRATIONS) + 1))
    with pytest.raises(store.StoreError, match="newer than this code"):
        store.migrate(db)


def test_a_replayed_row_is_stored_once(db: sa.Engine) -> None:
    for _ in range(2):
        with db.begin() as connection:
            store.write_predictions(connection, [row("r1"), row("r1", 1)])
    assert store.count_predictions(db) == 2


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


def test_a_database_at_an_older_version_is_migrated_forward(tmp_path: Path) -> None:
    db = store.engine(f"sqlite:///{tmp_path / 'old.db'}")
    with db.begin() as connection:
        store.schema_version.create(connection)
        store.MIGRATIONS[0](connection)
        connection.execute(store.schema_version.insert().values(version=1))
        store.write_predictions(connection, [row("kept")])
    assert store.migrate(db) == len(store.MIGRATIONS)
    assert "retrained" in sa.inspect(db).get_table_names()
    assert store.count_predictions(db) == 1
