from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from mltemplate.dvcfiles import md5, to_csv_text
from mltemplate.errors import CommandError
from mltemplate.pipeline import data

BUNDLED_MD5 = hashlib.md5(to_csv_text(data.breast_cancer()).encode(), usedforsecurity=False).hexdigest()
"""The bundled data set's md5, whatever data.dvc tracks in this repository."""


def dvc_file(tmp_path: Path, md5: str, name: str = "breast_cancer.csv") -> Path:
    path = tmp_path / "data.dvc"
    path.write_text(yaml.safe_dump({"outs": [{"md5": md5, "size": 1, "hash": "md5", "path": f"data/raw/{name}"}]}))
    return path


def test_bundled_csv_matches_the_committed_data_dvc() -> None:
    expected = BUNDLED_MD5
    text = to_csv_text(data.breast_cancer())
    assert hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() == expected


def test_bundled_frame_shape() -> None:
    frame = data.breast_cancer()
    assert frame.shape == (569, 31)
    assert frame["diagnosis"].value_counts().to_dict() == {"benign": 357, "malignant": 212}
    assert " " not in "".join(frame.columns)


def test_materialize_refuses_a_hash_mismatch_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "data/raw/breast_cancer.csv"
    with pytest.raises(CommandError, match=r"hashes to [0-9a-f]{32} but data.dvc expects 0{32}"):
        data.materialize(target, "0" * 32)
    assert not target.exists()


def test_unknown_data_set_without_remote_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"configure a remote"):
        data.materialize(tmp_path / "data/raw/mine.csv", "0" * 32)


def test_fetch_writes_and_verifies_the_bundled_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = BUNDLED_MD5
    monkeypatch.setattr(data, "remotes", list)
    path = dvc_file(tmp_path, expected)
    assert data.fetch(path) == "written from the bundled copy"
    assert data.fetch(path) == "already present"
    assert md5(tmp_path / "data/raw/breast_cancer.csv") == expected


def test_fetch_replaces_a_corrupted_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = BUNDLED_MD5
    monkeypatch.setattr(data, "remotes", list)
    raw = tmp_path / "data/raw/breast_cancer.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text("tampered\n")
    assert data.fetch(dvc_file(tmp_path, expected)) == "written from the bundled copy"
    assert md5(raw) == expected


def test_fetch_falls_back_when_the_remote_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = BUNDLED_MD5
    monkeypatch.setattr(data, "remotes", lambda: ["storage"])
    monkeypatch.setattr(data, "pull", lambda dvc_file: False)
    assert data.fetch(dvc_file(tmp_path, expected)) == "written from the bundled copy"
