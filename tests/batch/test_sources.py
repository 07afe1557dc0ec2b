"""mltemplate.batch.sources: input files are found, and every part knows where its rows begin in their file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mltemplate.batch import sources


def test_csv_blocks_cut_at_line_ends_and_their_lines_add_up(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    pd.DataFrame({"a": range(1000), "b": ["x,y"] * 1000}).to_csv(path, index=False)
    header, start = sources.csv_header(path)
    blocks = sources.csv_blocks(path, start, block_bytes=997)
    assert header == ("a", "b")
    assert len(blocks) > 5
    data = path.read_bytes()
    assert all(data[end - 1 : end] == b"\n" for _, end in blocks)
    assert [b[0] for b in blocks[1:]] == [b[1] for b in blocks[:-1]]
    assert sum(sources.count_lines(path, a, b) for a, b in blocks) == 1000


def test_a_last_line_without_its_line_end_counts(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"a\n1\n2")
    assert sources.count_lines(path, 2, path.stat().st_size) == 2


def test_parquet_parts_are_row_groups_with_their_first_rows(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pd.DataFrame({"a": range(250)}).to_parquet(path, row_group_size=100)
    parts = sources.parquet_parts(path, "in.parquet", 3)
    assert [(p.index, p.row_group, p.first_row) for p in parts] == [(3, 0, 0), (4, 1, 100), (5, 2, 200)]


def test_a_directory_gives_its_csv_and_parquet_files(tmp_path: Path) -> None:
    for name in ("b/x.parquet", "a.csv", "notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("a\n")
    assert [p.relative_to(tmp_path).as_posix() for p in sources.input_files(tmp_path)] == ["a.csv", "b/x.parquet"]


@pytest.mark.parametrize(("name", "message"), [("missing.csv", "no such file"), ("notes.txt", "not a CSV or Parquet")])
def test_other_inputs_are_refused(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(sources.SourceError, match=message):
        sources.input_files(tmp_path / name)
