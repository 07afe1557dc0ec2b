"""What a batch job reads: the input files (CSV or Parquet, or a directory of them) and their parts, each a range
of rows whose position in its file is known before it is read (Parquet row groups; CSV byte blocks whose lines were
counted first), so every prediction carries its input row number."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from mltemplate.errors import Error

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
BLOCK_BYTES = 64 * 2**20
"""A CSV part: about this many bytes, cut at a line end."""


class SourceError(Error, ValueError):
    """The input is missing, empty, or not CSV or Parquet."""


@dataclass(frozen=True)
class Part:
    """Rows of one input file: a Parquet row group, or the CSV lines in [start, end) bytes; `first_row` is the
    position of its first row among the file's data rows (from 0; a CSV header is not a row)."""

    path: Path
    source: str
    kind: str
    index: int
    first_row: int = 0
    row_group: int = 0
    start: int = 0
    end: int = 0
    header: tuple[str, ...] = ()


def input_files(path: Path) -> list[Path]:
    """The file, or the CSV and Parquet files of the directory (recursively, sorted); SourceError otherwise."""
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise SourceError(f"{path}: not a CSV or Parquet file (suffixes {sorted(SUFFIXES)})")
        return [path]
    if not path.is_dir():
        raise SourceError(f"{path}: no such file or directory")
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not found:
        raise SourceError(f"{path}: no CSV or Parquet files in it (suffixes {sorted(SUFFIXES)})")
    return found


def parquet_parts(path: Path, source: str, start_index: int) -> list[Part]:
    metadata = pq.ParquetFile(path).metadata
    parts: list[Part] = []
    first = 0
    for group in range(metadata.num_row_groups):
        parts.append(Part(path, source, "parquet", start_index + len(parts), first_row=first, row_group=group))
        first += metadata.row_group(group).num_rows
    return parts


def csv_header(path: Path) -> tuple[tuple[str, ...], int]:
    """The header's column names and the byte where the data begins."""
    import csv

    with path.open("rb") as handle:
        line = handle.readline()
    if not line.strip():
        raise SourceError(f"{path}: no header row")
    names = next(csv.reader([line.decode("utf-8-sig").rstrip("\r\n")]))
    return tuple(names), len(line)


def csv_blocks(path: Path, data_start: int, block_bytes: int = BLOCK_BYTES) -> list[tuple[int, int]]:
    """[start, end) byte ranges of about block_bytes that begin and end at line ends."""
    size = path.stat().st_size
    cuts = [data_start]
    with path.open("rb") as handle:
        while cuts[-1] + block_bytes < size:
            handle.seek(cuts[-1] + block_bytes)
            handle.readline()  # to the end of the line the nominal cut falls in
            cut = handle.tell()
            if cut >= size:
                break
            cuts.append(cut)
    return [(a, b) for a, b in zip(cuts, [*cuts[1:], size], strict=True) if b > a]


def count_lines(path: Path, start: int, end: int) -> int:
    """The lines in [start, end): its line ends, plus one for a last line without its own."""
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
