"""The `pr-report` artifact: data, never markdown. `make report` (untrusted: it runs the PR's code) writes
report.json plus allowlisted plot PNGs; `make comment` (trusted) validates them here and renders the comment.

Everything has a cap (string lengths, list and mapping sizes, file sizes, image dimensions), so a hostile artifact
is refused with a message that names the file and field instead of being rendered."""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from mltemplate.errors import Error
from mltemplate.plots import PLOTS
from mltemplate.report.schema import Report

DATA_FILE = "report.json"
REPORT_FILE = "report.md"
"""The human-readable report for the job summary; allowed in the artifact, never read by `make comment`."""
IMAGE_FILES = frozenset(f"{side}_{plot.name}.png" for side in ("base", "pr") for plot in PLOTS)
"""The PNGs kept in the artifact: every plot of mltemplate.plots, once per side (base_<plot>.png, pr_<plot>.png)."""
ALLOWED_FILES = frozenset({DATA_FILE, REPORT_FILE}) | IMAGE_FILES

MAX_DATA_BYTES = 2 * 2**20
MAX_REPORT_BYTES = 2 * 2**20
MAX_IMAGE_BYTES = 2 * 2**20
MAX_IMAGE_SIDE = 4096
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ArtifactError(Error, ValueError):
    """The artifact is not what `make report` writes: the message names the file and the field."""


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "<top level>"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{DATA_FILE}: {where}: {first['msg']}{more}"


def parse(data: bytes) -> Report:
    """report.json's bytes as a Report; ArtifactError naming the first bad field."""
    if len(data) > MAX_DATA_BYTES:
        raise ArtifactError(f"{DATA_FILE}: {len(data)} bytes, more than the {MAX_DATA_BYTES} allowed")
    try:
        return Report.model_validate_json(data)
    except ValidationError as error:
        raise ArtifactError(_describe(error)) from None


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; ValueError when `data` is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 24:
        raise ValueError("not a PNG (no PNG signature and IHDR chunk)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_png(name: str, data: bytes) -> bytes:
    if len(data) > MAX_IMAGE_BYTES:
        raise ArtifactError(f"{name}: {len(data)} bytes, more than the {MAX_IMAGE_BYTES} allowed")
    try:
        width, height = png_size(data)
    except ValueError as error:
        raise ArtifactError(f"{name}: {error}") from None
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise ArtifactError(f"{name}: {width}x{height} pixels; each side must be in 1..{MAX_IMAGE_SIDE}")
    return data


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file, refusing symlinks (O_NOFOLLOW) and anything over `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise ArtifactError(f"{path.name}: cannot be opened as a regular file ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ArtifactError(f"{path.name}: not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ArtifactError(f"{path.name}: more than the {limit} bytes allowed")
    return data


@dataclass(frozen=True)
class Loaded:
    """A validated artifact: the report data and the PNGs by file name."""

    report: Report
    images: dict[str, bytes]


def load(directory: Path) -> Loaded:
    """Validate an artifact directory: only allowlisted names, regular files (no symlinks, no folders), size caps,
    a valid report.json and real PNGs; ArtifactError naming the first problem."""
    if directory.is_symlink() or not directory.is_dir():
        raise ArtifactError(f"{directory}: not a directory (the downloaded `pr-report` artifact)")
    images: dict[str, bytes] = {}
    report: Report | None = None
    with os.scandir(directory) as entries:
        names = sorted((entry.name, entry.is_symlink(), entry.is_file(follow_symlinks=False)) for entry in entries)
    for name, is_link, is_file in names:
        if name not in ALLOWED_FILES:
            raise ArtifactError(f"{name!r}: not an allowed file name; allowed: {sorted(ALLOWED_FILES)}")
        if is_link or not is_file:
            raise ArtifactError(f"{name}: must be a regular file, not a symlink or a folder")
        if name == DATA_FILE:
            report = parse(_read_regular(directory / name, MAX_DATA_BYTES))
        elif name in IMAGE_FILES:
            images[name] = check_png(name, _read_regular(directory / name, MAX_IMAGE_BYTES))
        elif (directory / name).stat().st_size > MAX_REPORT_BYTES:
            raise ArtifactError(f"{name}: more than the {MAX_REPORT_BYTES} bytes allowed")
    if report is None:
        raise ArtifactError(f"{DATA_FILE} is missing from {directory}")
    return Loaded(report=report, images=images)
