"""The artifact's validation: what `make comment` accepts from the untrusted report job, and what it refuses."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import pytest

from mltemplate.report import artifact, schema
from mltemplate.report.artifact import ArtifactError
from mltemplate.report.schema import Report, Side


def png(width: int = 2, height: int = 2) -> bytes:
    """A real, minimal PNG header + IHDR of the given size (the validator reads no further)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return artifact.PNG_SIGNATURE + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


def report(**changes: object) -> Report:
    fields: dict[str, object] = {
        "base_ref": "main",
        "base": Side(label="main", metrics={"accuracy": 0.9}),
        "pr": Side(label="PR", metrics={"accuracy": 0.95}),
    }
    return Report.model_validate({**fields, **changes})


def write_artifact(directory: Path, data: Report | bytes | None = None, **files: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = report() if data is None else data
    (directory / "report.json").write_bytes(data if isinstance(data, bytes) else data.to_json().encode())
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return directory


def test_load_accepts_what_make_report_writes(tmp_path: Path) -> None:
    written = report(pr_number=7, head_sha="a" * 40, stale=["dvc.lock"])
    loaded = artifact.load(write_artifact(tmp_path, written, **{"pr_roc.png": png(), "report.md": b"# any text"}))
    assert loaded.report == written
    assert loaded.images == {"pr_roc.png": png()}


def test_report_round_trips_through_json() -> None:
    original = report(
        base=Side(label="m", curves={"roc": [(0.0, 0.0), (1.0, 1.0)]}, params={"a.b": "[1, 2]", "c": None, "d": True})
    )
    assert artifact.parse(original.to_json().encode()) == original


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("evil.sh", b"#!/bin/sh", "'evil.sh': not an allowed file name"),
        ("pr_roc.png", b"<svg onload=alert(1)>", "pr_roc.png: not a PNG"),
        ("pr_roc.png", png(width=100_000), "pr_roc.png: 100000x2 pixels"),
        ("pr_roc.png", png() + b"\0" * artifact.MAX_IMAGE_BYTES, "pr_roc.png: more than the"),
    ],
)
def test_load_refuses_a_file_it_does_not_allow(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        artifact.load(write_artifact(tmp_path, **{name: content}))


def test_load_refuses_a_symlink_to_a_file_outside(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(png())
    directory = write_artifact(tmp_path / "artifact")
    (directory / "pr_roc.png").symlink_to(secret)
    with pytest.raises(ArtifactError, match=re.escape("pr_roc.png: must be a regular file, not a symlink")):
        artifact.load(directory)


def test_load_refuses_a_folder_with_an_allowed_name(tmp_path: Path) -> None:
    directory = write_artifact(tmp_path)
    (directory / "base_roc.png").mkdir()
    with pytest.raises(ArtifactError, match=re.escape("base_roc.png: must be a regular file")):
        artifact.load(directory)


def test_load_refuses_an_artifact_without_report_json(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("# hi")
    with pytest.raises(ArtifactError, match=re.escape("report.json is missing")):
        artifact.load(tmp_path)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"not json", "report.json: <top level>: Invalid JSON"),
        (b'{"base_ref": "main"}', "report.json: base: Field required"),
        (
            json.dumps({**json.loads(report().to_json()), "gate": "passed"}).encode(),
            "report.json: gate: Extra inputs are not permitted",
        ),
        (
            json.dumps({**json.loads(report().to_json()), "pr_number": "7; rm -rf /"}).encode(),
            "report.json: pr_number: Input should be a valid integer",
        ),
        (
            json.dumps({**json.loads(report().to_json()), "head_sha": "../../etc"}).encode(),
            "report.json: head_sha: String should match pattern",
        ),
        (
            json.dumps({**json.loads(report().to_json()), "base_ref": "x" * 10_000}).encode(),
            "report.json: base_ref: String should have at most 200 characters",
        ),
        (b" " * (artifact.MAX_DATA_BYTES + 1), "report.json: more than the"),
    ],
)
def test_load_refuses_a_report_json_that_is_not_the_schema(tmp_path: Path, document: bytes, message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        artifact.load(write_artifact(tmp_path, document))


def test_confusion_must_be_square() -> None:
    with pytest.raises(ValueError, match="counts must be 2 x 2"):
        schema.Confusion(labels=["a", "b"], counts=[[1, 2]])


def test_png_size_reads_the_ihdr() -> None:
    assert artifact.png_size(png(640, 480)) == (640, 480)
