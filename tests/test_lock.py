"""The dvc.lock reader."""

from __future__ import annotations

from pathlib import Path

import yaml

from mltemplate import lock

LOCK = {
    "schema": "2.0",
    "stages": {
        "train": {"outs": [{"path": "models/metadata.json", "md5": "a", "size": 1}, {"path": "models/m", "size": 42}]},
        "evaluate": {"outs": [{"path": "metrics.json", "md5": "b", "size": 3}]},
    },
}


def test_parse_lists_every_stage_output_by_path() -> None:
    outs = lock.parse(yaml.safe_dump(LOCK))
    assert outs["models/m"] == lock.Out(stage="train", path="models/m", md5=None, size=42)
    assert outs["metrics.json"].stage == "evaluate"


def test_parse_of_nothing_or_garbage_is_empty() -> None:
    assert lock.parse(None) == {}
    assert lock.parse("{not yaml: [") == {}
    assert lock.parse("- a list") == {}


def test_locked_md5_resolves_paths_relative_to_the_lock(tmp_path: Path) -> None:
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(LOCK))
    assert lock.locked_md5(tmp_path / "models/metadata.json", lock=tmp_path / "dvc.lock") == "a"
    assert lock.locked_md5(tmp_path / "other", lock=tmp_path / "dvc.lock") is None
    assert lock.locked_md5(tmp_path / "models/m", lock=tmp_path / "absent.lock") is None


def test_tracked_md5_reads_a_dvc_file() -> None:
    assert lock.tracked_md5("outs:\n- md5: abc\n  path: data/raw/x.csv\n") == "abc"
    assert lock.tracked_md5(None) is None
    assert lock.tracked_md5("outs: []") is None
