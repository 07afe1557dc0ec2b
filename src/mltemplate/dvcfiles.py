"""The one reader of DVC's files: dvc.lock (which stage produced which output, with what md5 and size) and the .dvc
files (which file data.dvc tracks, with what md5 and size); `track` points a .dvc file at a CSV, and `to_csv_text`
writes data the byte-stable way their md5s need."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mltemplate import atomic
from mltemplate.errors import CommandError, Error
from mltemplate.paths import DATA_DVC, DVC_LOCK

if TYPE_CHECKING:
    import pandas as pd

DVC = (sys.executable, "-m", "dvc")
"""DVC from this environment, whatever PATH holds."""
TRACK = "python -m mltemplate.pipeline.data track PATH"


class DvcFileError(Error, ValueError):
    """A .dvc file is missing or does not record a tracked file."""


@dataclass(frozen=True)
class Out:
    """One stage output as dvc.lock records it; `path` is relative to the lock file's folder."""

    stage: str
    path: str
    md5: str | None
    size: int | None


@dataclass(frozen=True)
class Tracked:
    """The file a .dvc file tracks, as it records it; `path` joins the .dvc file's folder and the recorded path."""

    path: Path
    md5: str
    size: int | None


def md5(path: Path) -> str:
    """The md5 DVC records for a file in dvc.lock and .dvc files."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_lock(text: str | bytes | None) -> dict[str, Out]:
    """Every stage output by path; an empty mapping for a missing or unreadable lock."""
    if text is None:
        return {}
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    stages = document.get("stages") if isinstance(document, dict) else None
    outs: dict[str, Out] = {}
    for stage, spec in (stages or {}).items():
        for out in spec.get("outs", []) if isinstance(spec, dict) else []:
            if isinstance(out, dict) and isinstance(out.get("path"), str):
                found_md5, size = out.get("md5"), out.get("size")
                outs[out["path"]] = Out(
                    stage=str(stage),
                    path=out["path"],
                    md5=str(found_md5) if found_md5 is not None else None,
                    size=size if isinstance(size, int) else None,
                )
    return outs


def read_lock(lock: Path = DVC_LOCK) -> dict[str, Out]:
    """The outputs of the lock file at `lock`, keyed by path relative to the repository root (the lock's folder)."""
    return parse_lock(lock.read_bytes()) if lock.exists() else {}


def locked_md5(path: Path, *, lock: Path = DVC_LOCK) -> str | None:
    """The md5 `lock` records for the output at `path` (any path that resolves to the same file), or None."""
    target = path.resolve()
    for out in read_lock(lock).values():
        if (lock.parent / out.path).resolve() == target:
            return out.md5
    return None


def _first_out(text: str | bytes, base: Path) -> Tracked:
    """The first output of a .dvc file's text; KeyError, IndexError or TypeError when it records none."""
    out = yaml.safe_load(text)["outs"][0]
    if not isinstance(out["path"], str) or out["md5"] is None:
        raise TypeError(f"path {out['path']!r}, md5 {out['md5']!r}")
    size = out.get("size")
    return Tracked(path=base / out["path"], md5=str(out["md5"]), size=size if isinstance(size, int) else None)


def parse_tracked(text: str | bytes | None, *, base: Path = Path()) -> Tracked | None:
    """The file a .dvc file's text (e.g. data.dvc at a git ref) tracks, or None when there is none; `base` is the
    folder the .dvc file is in."""
    if text is None:
        return None
    try:
        return _first_out(text, base)
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return None


def tracked_md5(text: str | bytes | None) -> str | None:
    """The md5 of the file a .dvc file's text tracks, or None when there is none."""
    found = parse_tracked(text)
    return found.md5 if found is not None else None


def read_tracked(dvc_file: Path = DATA_DVC) -> Tracked:
    """The file `dvc_file` tracks; DvcFileError when it is missing or records none."""
    try:
        return _first_out(dvc_file.read_bytes(), dvc_file.parent)
    except FileNotFoundError:
        raise DvcFileError(f"{dvc_file} not found: track a CSV with `{TRACK}`") from None
    except (yaml.YAMLError, KeyError, IndexError, TypeError) as error:
        raise DvcFileError(f"{dvc_file}: no `outs[0].path` and `md5` ({error!r})") from None


def track(csv: Path, dvc_file: Path = DATA_DVC) -> Tracked:
    """Point `dvc_file` at `csv` (md5 and size), as `dvc add` would, and put it in the DVC cache."""
    if not csv.is_file():
        raise CommandError(f"{csv}: no such file")
    relative = csv.resolve().relative_to(dvc_file.resolve().parent)
    found = Tracked(path=dvc_file.parent / relative, md5=md5(csv), size=csv.stat().st_size)
    spec = {"outs": [{"md5": found.md5, "size": found.size, "hash": "md5", "path": relative.as_posix()}]}
    atomic.write_text(dvc_file, yaml.safe_dump(spec, sort_keys=False))
    committed = subprocess.run([*DVC, "commit", "--force", "--quiet", str(dvc_file)], capture_output=True, text=True)
    if committed.returncode != 0:
        raise CommandError(f"dvc commit {dvc_file} failed: {(committed.stderr or committed.stdout).strip()}")
    return found


def to_csv_text(frame: pd.DataFrame) -> str:
    """A data file's text: shortest round-trip float repr and "\\n" endings, so the same data gives the same bytes,
    hence the same md5 in data.dvc, everywhere."""
    return frame.to_csv(index=False, lineterminator="\n")
