"""The monitoring database: created and migrated by the code, duplicates ignored, URL from the environment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from mltemplate.monitoring import codec, store


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


def test_open_store_creates_every_table_at_the_latest_version(db: sa.Engine) -> None:
    tables = set(sa.inspect(db).get_table_names())
    assert {"prediction_requests", "feedback", "monitor_runs", "retrained", "monitoring_schema"} <= tables
    assert "predictions" not in tables  # schema version 2's per-record log, moved by migration 3
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


def test_a_database_at_an_older_version_is_migrated_forward(tmp_path: Path) -> None:
    db = store.engine(f"sqlite:///{tmp_path / 'old.db'}")
    with db.begin() as connection:
        store.schema_version.create(connection)
        store.MIGRATIONS[0](connection)
        connection.execute(store.schema_version.insert().values(version=1))
    assert store.migrate(db) == len(store.MIGRATIONS)
    assert "retrained" in sa.inspect(db).get_table_names()


def legacy_row(request_id: str, position: int, x: float | None, kind: str | None, label: str) -> dict[str, object]:
    probability = 0.8 if label == "yes" else 0.3
    return {
        "request_id": request_id,
        "position": position,
        "ts": 10.0 + position,
        "model_version": "v1",
        "features": {"x": x, "kind": kind},
        "label": label,
        "probabilities": {"no": 1 - probability, "yes": probability},
    }


def test_migration_3_moves_the_per_record_log_into_one_row_per_request(tmp_path: Path) -> None:
    db = store.engine(f"sqlite:///{tmp_path / 'v2.db'}")
    legacy = [
        legacy_row("a", 1, None, "blue", "yes"),
        legacy_row("a", 0, 1.5, "red", "no"),
        *(legacy_row(f"b{i:03}", 0, float(i), None, "no") for i in range(30)),
    ]
    with db.begin() as connection:
        store.schema_version.create(connection)
        for step in store.MIGRATIONS[:2]:
            step(connection)
        connection.execute(store.schema_version.insert().values(version=2))
        connection.execute(store.legacy_predictions.insert(), legacy)
        pages = list(store._legacy_batches(connection, page=7))  # requests never split across pages
    assert sorted(r["request_id"] for page in pages for r in page) == sorted(r["request_id"] for r in legacy)
    assert all(
        len({r["request_id"] for r in page} & {r["request_id"] for r in other}) == 0
        for i, page in enumerate(pages)
        for other in pages[i + 1 :]
    )

    assert store.migrate(db) == len(store.MIGRATIONS)
    assert "predictions" not in sa.inspect(db).get_table_names()
    assert store.count_predictions(db) == len(legacy)
    with db.connect() as connection:
        frame = store.read_records(connection, store.requests.c.request_id == "a")
    assert frame["x"].tolist()[0] == 1.5
    assert np.isnan(frame["x"].tolist()[1])
    assert frame["kind"].tolist() == ["red", "blue"]
    assert frame[codec.LABEL].tolist() == ["no", "yes"]
    assert frame[codec.OUTPUT + "yes"].tolist() == [0.3, 0.8]
