"""A commit's own model and prepared splits, in a detached git worktree: taken from DVC (the local cache, or the
configured remote) when it has them, else reproduced by that commit's own code (`dvc repro train` in the worktree),
whose dvc.lock guarantees the same bytes. The PR report reproduces the base's this way, and the release the model
that `production` serves."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from mltemplate import dvcfiles, git
from mltemplate.errors import CommandError
from mltemplate.paths import DATA_DVC, DVC_LOCK, MODEL_FILE, MODEL_METADATA, PARAMS_FILE, TEST_CSV, TRAIN_CSV

OUTPUTS = (MODEL_FILE, MODEL_METADATA, TRAIN_CSV, TEST_CSV)
"""What a comparison needs of a commit: its model and the rows it was trained and held out on."""
TIMEOUT_S = 1800


class ReproduceError(CommandError):
    """The commit's model could be neither read from DVC nor reproduced; the message says why."""


@dataclass(frozen=True)
class Reproduced:
    """A worktree of `ref` that holds OUTPUTS, and how they got there."""

    ref: str
    root: Path
    how: str


def _from_dvc(ref: str, tree: Path, repo: Path) -> bool:
    """Copy OUTPUTS at `ref` of `repo` from DVC (its cache or remote) into `tree`; False (nothing kept) unless every
    one is there."""
    import dvc.api
    from dvc.exceptions import DvcException

    found: dict[Path, bytes] = {}
    for path in OUTPUTS:
        try:
            with dvc.api.open(path.as_posix(), repo=str(repo), rev=ref, mode="rb") as source:
                found[path] = source.read()
        except (DvcException, OSError):
            return False
    for path, data in found.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
    return True


def _child_env(tree: Path, scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The commit's own code, not the package this environment installed; its runs go to a throwaway MLflow store.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree / "src"), env.get("PYTHONPATH")]))
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        env.pop(name, None)
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def _run(args: list[str], tree: Path, env: Mapping[str, str], what: str) -> None:
    try:
        result = subprocess.run(args, cwd=tree, env=dict(env), capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ReproduceError(f"{what} did not finish in {TIMEOUT_S} s") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()
        raise ReproduceError(f"{what} failed: {tail[-1] if tail else f'exit {result.returncode}'}")


def _reproduce(ref: str, tree: Path, scratch: Path, repo: Path) -> None:
    """Get the commit's data (this checkout's copy when it has the same bytes, else the commit's own `data` step:
    DVC remote or bundled copy), then `dvc repro train`; the model must be the one its dvc.lock records."""
    env = _child_env(tree, scratch)
    data = dvcfiles.parse_tracked((tree / DATA_DVC).read_bytes()) if (tree / DATA_DVC).is_file() else None
    if data is None:
        raise ReproduceError(f"{ref} has no readable {DATA_DVC}")
    local = repo / data.path
    if local.is_file() and dvcfiles.md5(local) == data.md5:
        (tree / data.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, tree / data.path)
    else:
        cache = repo / ".dvc" / "cache"
        if cache.is_dir():  # the checkout's DVC cache may hold that version of the data
            _run([sys.executable, "-m", "dvc", "cache", "dir", "--local", str(cache)], tree, env, "dvc cache dir")
        _run([sys.executable, "-m", "mltemplate.pipeline.data"], tree, env, f"getting {ref}'s data")
    _run([sys.executable, "-m", "dvc", "repro", "--quiet", "train"], tree, env, f"`dvc repro train` at {ref}")
    recorded = dvcfiles.locked_md5(tree / MODEL_FILE, lock=tree / DVC_LOCK)
    actual = dvcfiles.md5(tree / MODEL_FILE)
    if recorded is not None and actual != recorded:
        raise ReproduceError(f"{ref}'s model reproduced with md5 {actual}, not the {recorded} its dvc.lock records")


@contextlib.contextmanager
def checkout(ref: str, *, repo: Path = Path()) -> Iterator[Reproduced]:
    """A detached worktree of `ref` (a commit of `repo`) holding its model and prepared splits; removed after.
    ReproduceError says why when they can be had neither way."""
    if not git.is_commit(ref, repo):
        raise ReproduceError(f"{ref!r} is not a commit here")
    with tempfile.TemporaryDirectory(prefix="reproduce-") as scratch:
        tree = Path(scratch) / "tree"
        added = git.git("worktree", "add", "--detach", str(tree), ref, cwd=repo)
        if added.returncode != 0:
            raise ReproduceError(f"git worktree add {ref} failed: {added.stderr.decode(errors='replace').strip()}")
        try:
            if not (tree / PARAMS_FILE).is_file():
                raise ReproduceError(f"{ref} has no {PARAMS_FILE}")
            if _from_dvc(ref, tree, repo):
                how = "from the DVC cache or remote"
            else:
                _reproduce(ref, tree, Path(scratch), repo.resolve())
                how = f"reproduced from {ref}'s code and dvc.lock"
            yield Reproduced(ref, tree, how)
        finally:
            git.git("worktree", "remove", "--force", str(tree), cwd=repo)
