"""The reader of DVC's files (dvc.lock and .dvc files), tracking a CSV, and the byte-stable CSV text."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mltemplate import dvcfiles
from mltemplate.dvcfiles import DvcFileError, Out, Tracked

LOCK = {
    "schema": "2.0",
    "stages": {
        "train": {"outs": [{"path": "models/metadata.json", "md5": "a", "size": 1}, {"path": "models/m", "size": 42}]},
        "evaluate": {"outs": [{"path": "metrics.json", "md5": "b", "size": 3}]},
    },
}
DATA_DVC = "outs:\n- md5: abc\n  size: 12\n  hash: md5\n  path: raw/x.csv\n"


def test_parse_lock_lists_every_stage_output_by_path() -> None:
    outs = dvcfiles.parse_lock(yaml.safe_dump(LOCK))
    assert outs["models/m"] == Out(stage="train", path="models/m", md5=None, size=42)
    assert outs["metrics.json"].stage == "evaluate"


def test_parse_lock_of_nothing_or_garbage_is_empty() -> None:
    assert dvcfiles.parse_lock(None) == {}
    assert dvcfiles.parse_lock("{not yaml: [") == {}
    assert dvcfiles.parse_lock("- a list") == {}


def test_locked_md5_resolves_paths_relative_to_the_lock(tmp_path: Path) -> None:
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(LOCK))
    assert dvcfiles.locked_md5(tmp_path / "models/metadata.json", lock=tmp_path / "dvc.lock") == "a"
    assert dvcfiles.locked_md5(tmp_path / "other", lock=tmp_path / "dvc.lock") is None
    assert dvcfiles.locked_md5(tmp_path / "models/m", lock=tmp_path / "absent.lock") is None


def test_parse_tracked_reads_path_md5_and_size() -> None:
    assert dvcfiles.parse_tracked(DATA_DVC, base=Path("data")) == Tracked(Path("data/raw/x.csv"), "abc", 12)
    assert dvcfiles.tracked_md5(DATA_DVC) == "abc"


@pytest.mark.parametrize(
    "text", [None, "outs: []", "{not yaml: [", "- a list", "outs:\n- path: x.csv\n", "outs:\n- md5: abc\n"]
)
def test_a_dvc_file_that_tracks_nothing_reads_as_none(text: str | None) -> None:
    assert dvcfiles.parse_tracked(text) is None
    assert dvcfiles.tracked_md5(text) is None


def test_read_tracked_joins_the_dvc_files_folder(tmp_path: Path) -> None:
    (tmp_path / "data.dvc").write_text(DATA_DVC)
    assert dvcfiles.read_tracked(tmp_path / "data.dvc") == Tracked(tmp_path / "raw/x.csv", "abc", 12)


def test_read_tracked_says_how_to_track_a_csv_when_the_file_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DvcFileError, match=r"data.dvc not found: track a CSV with `python -m mltemplate.pipeline"):
        dvcfiles.read_tracked(tmp_path / "data.dvc")


def test_read_tracked_names_what_a_broken_dvc_file_lacks(tmp_path: Path) -> None:
    (tmp_path / "data.dvc").write_text("outs:\n- path: x.csv\n")
    with pytest.raises(DvcFileError, match=r"data.dvc: no `outs\[0\].path` and `md5`"):
        dvcfiles.read_tracked(tmp_path / "data.dvc")


def test_md5_is_the_files_md5(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * (3 << 20))  # several chunks
    assert dvcfiles.md5(tmp_path / "f") == hashlib.md5(b"x" * (3 << 20), usedforsecurity=False).hexdigest()


def test_csv_text_has_unix_endings_and_round_trip_floats() -> None:
    text = dvcfiles.to_csv_text(pd.DataFrame({"a": [0.1, 1 / 3], "b": ["x", "y"]}))
    assert text == "a,b\n0.1,x\n0.3333333333333333,y\n"


def test_track_points_the_dvc_file_at_the_csv_and_caches_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    monkeypatch.chdir(tmp_path)
    csv = Path("data/raw/mine.csv")
    csv.parent.mkdir(parents=True)
    csv.write_text("a,b\n1,x\n")
    found = dvcfiles.track(csv, Path("data.dvc"))
    assert found == Tracked(Path("data/raw/mine.csv"), dvcfiles.md5(csv), 8)
    assert dvcfiles.read_tracked(Path("data.dvc")) == found
    assert (tmp_path / ".dvc/cache/files/md5" / found.md5[:2] / found.md5[2:]).is_file()


def test_track_refuses_a_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(dvcfiles.CommandError, match="no such file"):
        dvcfiles.track(tmp_path / "absent.csv", tmp_path / "data.dvc")
