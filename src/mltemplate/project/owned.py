"""What the team owns: the files a data scientist's pull request changes (params, data pointers, the data contract)
and the outputs the pipeline regenerates from them. `make update-template` keeps the project's own copy of the
outputs and data pointers whatever the template's says, and merges params.yaml line by line; a pull request that
changes nothing else takes CI's fast lane (`make lane`). Reads and writes no file."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

DATA = ("data.dvc", "data/contract.yaml", "data/raw/.gitignore")
"""The data pointers: the tracked CSV's md5, its contract, the ignore rule of its file name."""
OUTPUTS = ("dvc.lock", "metrics.json", "plots/*", "examples/predict.json")
"""What `dvc repro` writes from the params, the data and the code, committed."""
KEPT = DATA + OUTPUTS
"""Never taken from the template by an update: the project's data and its own outputs (refresh them with make run)."""
PARAMS = ("params.yaml",)
"""The team's params: an update merges the template's changes into them, as into code."""
PROJECT_LANE = KEPT + PARAMS
"""A change to nothing else than these is a change of the project, not of the template: the fast lane."""


def matches(path: str, patterns: Iterable[str]) -> bool:
    """Whether a repository path (posix, relative) matches one of the patterns (`*` spans folders too)."""
    return any(fnmatchcase(path, pattern) for pattern in patterns)


def lane(changed: Iterable[str]) -> str:
    """`project` when every changed path is the team's (PROJECT_LANE) and something changed, else `template`."""
    paths = [path for path in changed if path]
    return "project" if paths and all(matches(path, PROJECT_LANE) for path in paths) else "template"
