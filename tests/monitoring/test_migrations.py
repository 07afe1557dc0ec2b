"""The monitoring database's schema: created and migrated by the code, forward from any older version, never back."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from mltemplate.monitoring import codec, migrations, store


@pytest.fixture
def db(tmp_path: Path) -> sa.Engine:
    return migrations.open_store(f"sqlite:///{tmp_path / 'sub' / 'log.db'}")


def test_open_store_creates_every_table_at_the_latest_version(db: sa.Engine) -> None:
    tables = set(sa.inspect(db).get_table_names())
    assert {"prediction_requests", "labels", "monitor_runs", "retrained", "monitoring_schema"} <= tables
    assert "predictions" not in tables  # schema version 2's per-record log, moved by migration 3
    assert "feedback" not in tables  # schema version 3's one label per record, moved by migration 4
    with db.connect() as connection:
        assert migrations.version(connection) == len(migrations.MIGRATIONS)


def test_migrate_twice_changes_nothing(db: sa.Engine) -> None:
    assert migrations.migrate(db) == len(migrations.MIGRATIONS)
    with db.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(store.schema_version)).scalar() == 1


def test_a_database_newer_than_the_code_is_refused(db: sa.Engine) -> None:
    with db.begin() as connection:
        connection.execute(store.schema_version.update().values(version=len(migrations.MIGRATIONS) + 1))
    with pytest.raises(store.StoreError, match="newer than this code"):
        migrations.migrate(db)


def test_a_database_at_an_older_version_is_migrated_forward(tmp_path: Path) -> None:
    db = store.engine(f"sqlite:///{tmp_path / 'old.db'}")
    with db.begin() as connection:
        store.schema_version.create(connection)
        migrations.MIGRATIONS[0](connection)
        connection.execute(store.schema_version.insert().values(version=1))
    assert migrations.migrate(db) == len(migrations.MIGRATIONS)
    assert "retrained" in sa.inspect(db).get_table_names()


def _open_when(barrier: Any, url: str) -> int:
    barrier.wait()
    db = migrations.open_store(url)
    with db.connect() as connection:
        found = migrations.version(connection)
    db.dispose()
    return found


def test_processes_opening_a_new_sqlite_file_at_once_all_find_it_migrated(tmp_path: Path) -> None:
    # The service's workers, `make monitor` and a labeller's client may all open a new log at the same moment.
    url = f"sqlite:///{tmp_path / 'log.db'}"
    for _ in range(5):  # a fresh file each round: the race is in creating the tables
        (tmp_path / "log.db").unlink(missing_ok=True)
        with multiprocessing.Manager() as manager, ProcessPoolExecutor(8) as pool:
            barrier = manager.Barrier(8)
            found = list(pool.map(_open_when, [barrier] * 8, [url] * 8))
        assert found == [len(migrations.MIGRATIONS)] * 8


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
        for step in migrations.MIGRATIONS[:2]:
            step(connection)
        connection.execute(store.schema_version.insert().values(version=2))
        connection.execute(store.legacy_predictions.insert(), legacy)
        pages = list(migrations._legacy_batches(connection, page=7))  # requests never split across pages
    assert sorted(r["request_id"] for page in pages for r in page) == sorted(r["request_id"] for r in legacy)
    assert all(
        len({r["request_id"] for r in page} & {r["request_id"] for r in other}) == 0
        for i, page in enumerate(pages)
        for other in pages[i + 1 :]
    )

    assert migrations.migrate(db) == len(migrations.MIGRATIONS)
    assert "predictions" not in sa.inspect(db).get_table_names()
    assert store.count_predictions(db) == len(legacy)
    with db.connect() as connection:
        frame = store.read_records(connection, store.requests.c.request_id == "a")
    assert frame["x"].tolist()[0] == 1.5
    assert np.isnan(frame["x"].tolist()[1])
    assert frame["kind"].tolist() == ["red", "blue"]
    assert frame[codec.LABEL].tolist() == ["no", "yes"]
    assert frame[codec.OUTPUT + "yes"].tolist() == [0.3, 0.8]


def shipped_version_3(db: sa.Engine) -> None:
    """The tables as schema version 3 shipped them: per-request log without the client's id, one label per record."""
    shipped = sa.MetaData()
    columns = [column._copy() for column in store.requests.columns if column.name != "client_request_id"]
    requests = sa.Table(store.requests.name, shipped, *columns)
    with db.begin() as connection:
        store.schema_version.create(connection)
        for table in (store.feedback, store.monitor_runs, store.retrained):
            table.create(connection)
        requests.create(connection)
        connection.execute(store.schema_version.insert().values(version=3))
        row = codec.encode(
            "old-1", 5.0, "v1", codec.Columns(("x",), (), ("no", "yes")), [(1.0,), (2.0,)], ["no"] * 2, [[0.9, 0.1]] * 2
        )
        del row["client_request_id"]
        connection.execute(requests.insert(), [row])
        connection.execute(
            store.feedback.insert(),
            [
                {"request_id": "old-1", "position": 1, "label": "yes", "ts": 6.0},
                {"request_id": "gone", "position": 0, "label": "no", "ts": 7.0},
            ],
        )


def test_a_database_at_schema_version_3_moves_its_labels_and_keeps_its_log(database: str) -> None:
    db = store.engine(database)
    shipped_version_3(db)
    assert migrations.migrate(db) == len(migrations.MIGRATIONS) == 4
    tables = set(sa.inspect(db).get_table_names())
    assert "labels" in tables
    assert "feedback" not in tables
    with db.connect() as connection:
        frame = store.read_records(connection)
        moved = connection.execute(
            sa.select(store.labels.c.request_id, store.labels.c.position, store.labels.c.label, store.labels.c.labeller)
        ).all()
        counted = store.read_labels(connection, sa.select(store.counted_labels()))
    assert frame[codec.REQUEST_ID].tolist() == ["old-1", "old-1"]
    assert frame[codec.CLIENT_REQUEST_ID].tolist() == [None, None]
    assert sorted(moved) == [("gone", 0, "no", store.LEGACY_LABELLER), ("old-1", 1, "yes", store.LEGACY_LABELLER)]
    assert sorted(counted[store.TRUTH]) == ["no", "yes"]  # a label whose request the log never held is kept too
    with db.begin() as connection:  # and the log takes the client's id from now on
        store.write_requests(
            connection,
            [
                codec.encode(
                    "new-1",
                    8.0,
                    "v2",
                    codec.Columns(("x",), (), ("no", "yes")),
                    [(3.0,)],
                    ["yes"],
                    [[0.2, 0.8]],
                    client_request_id="c-1",
                )
            ],
        )
    with db.connect() as connection:
        assert store.read_records(connection, store.requests.c.request_id == "new-1")[
            codec.CLIENT_REQUEST_ID
        ].tolist() == ["c-1"]
    db.dispose()
