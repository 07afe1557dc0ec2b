"""The prediction log's spool: rows appended and fsynced within a byte bound, written back in bounded batches and
deleted when all are in, a refused write leaving the file whole, and orphans of dead workers taken over."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mltemplate.monitoring import codec, spool
from mltemplate.monitoring.spool import Spool

COLUMNS = codec.Columns(numeric=("x",), categorical=(), outputs=("no", "yes"))


def rows(count: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [codec.encode(f"{prefix}{i}", 1.0, "v1", COLUMNS, [(float(i),)], ["no"], [[0.9, 0.1]]) for i in range(count)]


class Database:
    """Stands in for the database: takes batches until told to refuse."""

    def __init__(self, refuse_after: int | None = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.refuse_after = refuse_after

    def write(self, batch: list[dict[str, Any]]) -> bool:
        if self.refuse_after is not None and len(self.batches) >= self.refuse_after:
            return False
        self.batches.append(batch)
        return True

    @property
    def ids(self) -> list[str]:
        return [row["request_id"] for batch in self.batches for row in batch]


def test_rows_are_written_back_and_the_file_deleted(tmp_path: Path) -> None:
    found = Spool(tmp_path, max_bytes=2**20)
    assert found.append(rows(3))
    assert found.records() == 3
    database = Database()
    assert found.replay(database.write)
    assert database.ids == ["r0", "r1", "r2"]
    assert list(tmp_path.iterdir()) == []
    assert found.bytes == 0


def test_the_byte_bound_refuses_a_write_and_keeps_what_is_there(tmp_path: Path) -> None:
    found = Spool(tmp_path, max_bytes=len(json.dumps(codec.to_json_safe(rows(1)[0]))) * 3)
    assert found.append(rows(2))
    assert not found.append(rows(2, prefix="more"))
    assert found.records() == 2


def test_a_write_back_that_fails_midway_keeps_the_file_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "BATCH_ROWS", 2)
    found = Spool(tmp_path, max_bytes=2**20)
    assert found.append(rows(5))
    failing = Database(refuse_after=1)
    assert not found.replay(failing.write)
    assert failing.ids == ["r0", "r1"]
    database = Database()
    assert found.replay(database.write)  # again from the start: the database ignores what it holds already
    assert database.ids == [f"r{i}" for i in range(5)]
    assert list(tmp_path.iterdir()) == []


def test_a_disk_that_refuses_leaves_no_line_cut_short(tmp_path: Path) -> None:
    found = Spool(tmp_path / "spool", max_bytes=2**20)
    assert found.append(rows(1))
    (tmp_path / "spool").chmod(0o500)
    found.current.chmod(0o400)
    try:
        refused = found.append(rows(1, prefix="refused"))
    finally:
        (tmp_path / "spool").chmod(0o700)
        found.current.chmod(0o600)
    if not refused:  # root writes through permissions: then there is nothing to check
        assert found.records() == 1
    assert found.append(rows(1, prefix="after"))
    database = Database()
    assert found.replay(database.write)
    assert "after0" in database.ids


def test_a_directory_that_cannot_be_made_refuses_instead_of_raising(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    assert not Spool(tmp_path / "file" / "spool", max_bytes=2**20).append(rows(1))


def test_a_dead_workers_spool_is_taken_over_and_counted(tmp_path: Path) -> None:
    dead = tmp_path / "999999999-dead.jsonl"
    dead.write_text("".join(json.dumps(codec.to_json_safe(row)) + "\n" for row in rows(2)))
    found = Spool(tmp_path, max_bytes=2**20)
    found.claim_orphans()
    assert not dead.exists()
    assert found.bytes > 0
    database = Database()
    assert found.replay(database.write)
    assert database.ids == ["r0", "r1"]
    assert list(tmp_path.iterdir()) == []


def test_a_big_file_is_set_aside_so_no_file_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "ROTATE_BYTES", 1)
    found = Spool(tmp_path, max_bytes=2**20)
    assert found.append(rows(1))
    assert found.append(rows(1, prefix="next"))
    assert len(list(tmp_path.glob("*.claimed"))) == 2
