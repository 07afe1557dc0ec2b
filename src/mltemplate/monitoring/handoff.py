"""What a retrain hands to its pull request, in the standard library only: the job of the retrain workflow that holds
the write token installs nothing and runs no other code of the project. `make retrain` collects the data files it
changed (ALLOWED) into build/retrain/files/ beside its summary; `make check-retrain-paths` checks that the handed-over
files are only those (regular files, small, at allowed paths), puts them onto the checkout, checks that the checkout
now differs from its commit in those paths only, and lists them (build/retrain/paths.txt) for `git add`."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

ALLOWED_FILES = frozenset({"data.dvc", "reference.dvc", "dvc.lock", "metrics.json", "examples/predict.json"})
ALLOWED_DIRS = frozenset({"plots"})
"""Folders whose files (directly inside, .json or .png) a retrain may change: the plots."""
MAX_BYTES = 5 * 2**20
MAX_SUMMARY_BYTES = 60_000
"""A pull request's body holds at most 65,536 characters."""
FILES, PATHS, SUMMARY_MD, SUMMARY_JSON = "files", "paths.txt", "summary.md", "summary.json"


class HandoffError(Exception):
    """The retrain handed over something else than its data files: nothing is committed."""


def allowed(path: str) -> bool:
    """Whether a retrain may change `path` (relative, POSIX)."""
    parts = PurePosixPath(path).parts
    if path in ALLOWED_FILES:
        return True
    return len(parts) == 2 and parts[0] in ALLOWED_DIRS and PurePosixPath(path).suffix in {".json", ".png"}


def changed(repo: Path) -> list[str]:
    """The paths of `repo` that differ from its commit: modified, added, deleted or untracked (not ignored)."""
    listed = subprocess.run(
        ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd=repo, capture_output=True, check=True
    ).stdout.decode()
    entries = listed.split("\0")
    paths, skip = [], False
    for entry in entries:
        if skip or not entry:
            skip = False
            continue
        status, path = entry[:2], entry[3:]
        paths.append(path)
        skip = "R" in status or "C" in status  # a rename's original path follows; it changed too
    return sorted(paths)


def collect(repo: Path, out: Path) -> list[str]:
    """Copy the data files the retrain changed into out/files/ (replacing what was there); returns their paths.
    Other changes of the checkout are not handed over (and are named on stderr)."""
    target = out / FILES
    shutil.rmtree(target, ignore_errors=True)
    paths = changed(repo)
    for path in [p for p in paths if not allowed(p)]:
        print(f"retrain: {path} changed but is not a data file: it is not handed to the pull request", file=sys.stderr)
    kept = [p for p in paths if allowed(p) and (repo / p).is_file()]
    for path in kept:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo / path, target / path)
    return kept


def handed(handoff: Path) -> list[str]:
    """The files in handoff/files/, checked: regular files (no links, no devices), at allowed paths, small."""
    root = handoff / FILES
    if not root.is_dir():
        raise HandoffError(f"{root} is missing: `make retrain` hands its data files over there")
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            raise HandoffError(f"{relative} is not a regular file")
        if path.is_dir():
            if relative not in ALLOWED_DIRS and relative != "examples":
                raise HandoffError(f"{relative}/ is not a folder a retrain changes")
            continue
        if not allowed(relative):
            raise HandoffError(f"{relative} is not a data file a retrain may change ({sorted(ALLOWED_FILES)}, plots/)")
        if path.stat().st_size > MAX_BYTES:
            raise HandoffError(f"{relative} is {path.stat().st_size} bytes; a retrain's file is at most {MAX_BYTES}")
        found.append(relative)
    return found


def apply(repo: Path, handoff: Path) -> list[str]:
    """Check the handed files, put them onto the checkout at `repo`, check that it changed in those paths only, and
    write their list to handoff/paths.txt; returns it."""
    files = handed(handoff)
    summary = handoff / SUMMARY_MD
    if not summary.is_file() or summary.is_symlink() or summary.stat().st_size > MAX_SUMMARY_BYTES:
        raise HandoffError(f"{summary} is missing, not a file or over {MAX_SUMMARY_BYTES} bytes")
    for relative in files:
        shutil.copyfile(handoff / FILES / relative, repo / relative)
    paths = changed(repo)
    outside = [p for p in paths if p not in files and not p.startswith(f"{handoff.as_posix()}/")]
    if outside:
        raise HandoffError(f"the checkout changed outside the handed files: {outside}")
    if not paths:
        raise HandoffError("the handed files change nothing: there is nothing to propose")
    (handoff / PATHS).write_text("".join(f"{p}\n" for p in paths if p in files), encoding="utf-8")
    return [p for p in paths if p in files]


def passed(handoff: Path) -> bool:
    """Whether the retrain's new model passed its verdict on the reference set."""
    return bool(json.loads((handoff / SUMMARY_JSON).read_text(encoding="utf-8"))["passed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m mltemplate.monitoring.handoff", description=__doc__)
    parser.add_argument("command", choices=["collect", "apply", "title", "verdict"])
    parser.add_argument("handoff", type=Path, help="the retrain's folder (build/retrain)")
    args = parser.parse_args(argv)
    repo = Path.cwd()
    try:
        if args.command == "collect":
            print("\n".join(f"retrain: hands over {p}" for p in collect(repo, args.handoff)))
        elif args.command == "apply":
            print("\n".join(f"check-retrain-paths: {p}" for p in apply(repo, args.handoff)))
        elif args.command == "title":
            verdict = "passes" if passed(args.handoff) else "FAILS"
            print(f"Retrain on labelled production records (reference verdict: {verdict})")
        elif not passed(args.handoff):
            print("error: the retrained model fails its verdict on the reference set (see the PR)", file=sys.stderr)
            return 1
    except (HandoffError, OSError, ValueError, KeyError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
