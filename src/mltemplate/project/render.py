"""Rendering the template for a project with copier (its answers, its version), and the file-tree chores around it:
the answers file, a repository's tracked files, replacing one tree by another."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from mltemplate.errors import CommandError

ANSWERS = Path(".copier-answers.yml")
TEMPLATE_MARKER = Path("copier.yml")
"""Only the template has it (copier.yml excludes itself from projects)."""


@dataclass(frozen=True)
class Answers:
    """What .copier-answers.yml records: the template's version (a commit) and where it is, and the project's name."""

    commit: str
    source: str
    name: str


def read_answers(root: Path) -> Answers:
    try:
        found = yaml.safe_load((root / ANSWERS).read_text(encoding="utf-8"))
        return Answers(commit=str(found["_commit"]), source=str(found.get("_src_path") or ""), name=str(found["name"]))
    except FileNotFoundError:
        raise CommandError(f"no {ANSWERS}: this is not a project made by `make init`") from None
    except (yaml.YAMLError, KeyError, TypeError) as error:
        raise CommandError(f"{ANSWERS} is not an answers file ({error!r}); restore it from git") from None


def write_answers(root: Path, answers: Answers) -> None:
    """The answers file as copier writes it, with the full commit (a short one may turn ambiguous) and the source
    the project updates from."""
    header = "".join(line + "\n" for line in (root / ANSWERS).read_text().splitlines() if line.startswith("#"))
    body = {"_commit": answers.commit, "_src_path": answers.source, "name": answers.name}
    (root / ANSWERS).write_text(header + yaml.safe_dump(body, sort_keys=False), encoding="utf-8")


def git(*args: str, cwd: Path) -> str:
    """`git ARGS` in `cwd` with a fixed identity; CommandError with git's message when it fails."""
    identity = ["-c", "user.name=make init", "-c", "user.email=init@localhost", "-c", "commit.gpgsign=false"]
    result = subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CommandError(f"git {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def require_clean(root: Path) -> None:
    if git("status", "--porcelain", "--untracked-files=no", cwd=root).strip():
        raise CommandError("tracked files have uncommitted changes: commit or stash them first")


def tracked(root: Path) -> list[str]:
    return [name for name in git("ls-files", "-z", cwd=root).split("\0") if name]


def render(source: str, commit: str, *, name: str, dest: Path) -> None:
    """The template at `commit` of the repository `source`, rendered for the project `name` into `dest`."""
    from copier import run_copy  # the dev environment's; only make init and make update-template need it

    run_copy(source, dest, data={"name": name}, vcs_ref=commit, defaults=True, overwrite=True, unsafe=True, quiet=True)


def files(tree: Path) -> list[str]:
    """Every file below `tree` (posix, relative), its .git excluded."""
    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts)


def copy_files(source: Path, dest: Path, names: list[str]) -> None:
    for name in names:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, dest / name)


def remove_files(root: Path, names: list[str]) -> None:
    """Delete the files, then the folders they leave empty (or holding only caches)."""
    for name in names:
        (root / name).unlink(missing_ok=True)
    for folder in sorted({(root / name).parent for name in names}, key=lambda p: len(p.parts), reverse=True):
        while folder != root and folder.is_dir() and {p.name for p in folder.iterdir()} <= {"__pycache__"}:
            shutil.rmtree(folder)
            folder = folder.parent
