"""reproduce.py: a commit's own model and splits in a worktree. In a copy of the repository whose DVC cache is empty
and which has no remote, a commit's model is reproduced by its own code with the md5 its dvc.lock records; a ref
that is no commit, a commit without params.yaml, and a commit whose pipeline fails each raise a ReproduceError that
says why, and leave no worktree behind."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mltemplate import dvcfiles, reproduce
from mltemplate.params import load_params
from mltemplate.paths import DVC_LOCK, MODEL_FILE, PARAMS_FILE, TEST_CSV, TRAIN_CSV
from tests.conftest import ROOT, copy_repo

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def worktrees(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository (its code, params.yaml and dvc.lock committed; no DVC cache, no model) with this
    checkout's copy of the raw data beside it, untracked, as `make data` leaves it."""
    repo = copy_repo(tmp_path_factory.mktemp("reproduce") / "repo")
    raw = load_params(ROOT / PARAMS_FILE).data.raw
    if not (ROOT / raw).is_file():
        pytest.skip(f"{raw} is not here: run `make data` first")
    shutil.copyfile(ROOT / raw, repo / raw)
    return repo


@pytest.mark.integration
def test_a_commit_outside_the_dvc_cache_is_reproduced_with_the_model_its_dvc_lock_records(repo: Path) -> None:
    assert not (repo / ".dvc" / "cache").exists()
    assert not (repo / MODEL_FILE).exists()
    locked = dvcfiles.parse_lock(git(repo, "show", f"HEAD:{DVC_LOCK.as_posix()}"))[MODEL_FILE.as_posix()].md5
    # HEAD of `repo`, not of the checkout the tests run in (whose DVC cache holds its own HEAD's outputs).
    with reproduce.checkout("HEAD", repo=repo) as found:
        root = found.root
        assert found.how == "reproduced from HEAD's code and dvc.lock"
        assert dvcfiles.md5(root / MODEL_FILE) == locked
        target = load_params(root / PARAMS_FILE).data.target
        train, test = pd.read_csv(root / TRAIN_CSV), pd.read_csv(root / TEST_CSV)
        assert len(train) > 0
        assert len(test) > 0
        assert target in train.columns
        assert target in test.columns
    assert not root.exists()
    assert len(worktrees(repo)) == 1
    assert not (repo / MODEL_FILE).exists()  # the checkout itself is left as it was


@pytest.mark.integration
def test_a_pipeline_that_fails_at_the_commit_raises_naming_it(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "refused-params")
    params = yaml.safe_load((repo / PARAMS_FILE).read_text(encoding="utf-8"))
    params["split"]["test_size"] = 1.5  # the commit's own params.py refuses it
    (repo / PARAMS_FILE).write_text(yaml.safe_dump(params), encoding="utf-8")
    git(repo, "commit", "-qam", "a params.yaml the code refuses")
    commit = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "main")
    failed = re.escape(f"`dvc repro train` at {commit} failed: ") + ".*split.test_size"
    with pytest.raises(reproduce.ReproduceError, match=failed), reproduce.checkout(commit, repo=repo):
        pass
    assert len(worktrees(repo)) == 1


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "README.md").write_text("no params.yaml here\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "readme")
    return tmp_path


@pytest.mark.parametrize("ref", ["nope", "0123456789abcdef0123456789abcdef01234567", "main~5"])
def test_a_ref_that_is_not_a_commit_raises(tiny_repo: Path, ref: str) -> None:
    refused = re.escape(f"{ref!r} is not a commit here")
    with pytest.raises(reproduce.ReproduceError, match=refused), reproduce.checkout(ref, repo=tiny_repo):
        pass


def test_a_commit_without_params_raises_and_leaves_no_worktree(tiny_repo: Path) -> None:
    refused = re.escape("main has no params.yaml")
    with pytest.raises(reproduce.ReproduceError, match=refused), reproduce.checkout("main", repo=tiny_repo):
        pass
    assert len(worktrees(tiny_repo)) == 1
