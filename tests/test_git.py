"""The git helper: what it answers inside and outside a work tree."""

from __future__ import annotations

from pathlib import Path

from mltemplate import git
from tests.release.test_provenance import git_repo


def test_commit_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    assert git.commit(tmp_path) == git.UNKNOWN
    assert git.head(tmp_path) is None


def test_commit_is_marked_dirty_when_tracked_files_changed(tmp_path: Path) -> None:
    sha = git_repo(tmp_path)
    assert git.commit(tmp_path) == sha
    (tmp_path / "f").write_text("x")
    git.git("add", "f", cwd=tmp_path)
    assert git.commit(tmp_path) == f"{sha}-dirty"


def test_show_returns_none_for_a_file_the_commit_lacks(tmp_path: Path) -> None:
    git_repo(tmp_path)
    assert git.show("HEAD", Path("absent.txt"), repo=tmp_path) is None
    assert git.is_commit("HEAD", repo=tmp_path)
    assert not git.is_commit("no-such-ref", repo=tmp_path)
