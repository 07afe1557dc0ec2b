"""The one way the project asks git something: HEAD's commit and time, a file at a ref, any other command."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

UNKNOWN = "unknown"


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` without raising; the caller reads returncode, stdout and stderr."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as error:  # git is not installed
        return subprocess.CompletedProcess(["git", *args], 127, b"", str(error).encode())


def head(repo: Path | None = None) -> tuple[str, dt.datetime] | None:
    """HEAD's sha and commit time (UTC), or None outside a git work tree or before the first commit."""
    result = git("log", "-1", "--format=%H %ct", cwd=repo)
    if result.returncode != 0 or not result.stdout.strip():
        return None
    sha, seconds = result.stdout.decode().split()
    return sha, dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def commit(repo: Path | None = None) -> str:
    """HEAD's sha, with `-dirty` when tracked files differ; `unknown` outside a git work tree."""
    found = head(repo)
    if found is None:
        return UNKNOWN
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=repo).stdout.strip()
    return f"{found[0]}-dirty" if dirty else found[0]


def show(ref: str, path: Path, repo: Path | None = None) -> bytes | None:
    """The file at `ref`, or None when that commit does not have it."""
    result = git("show", f"{ref}:{path.as_posix()}", cwd=repo)
    return result.stdout if result.returncode == 0 else None


def is_commit(ref: str, repo: Path | None = None) -> bool:
    return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo).returncode == 0
