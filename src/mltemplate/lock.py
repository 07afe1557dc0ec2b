"""The one reader of DVC's lock files: dvc.lock (which stage produced which output, with what md5 and size) and
the md5 a .dvc file records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mltemplate.paths import DVC_LOCK


@dataclass(frozen=True)
class Out:
    """One stage output as dvc.lock records it; `path` is relative to the lock file's folder."""

    stage: str
    path: str
    md5: str | None
    size: int | None


def parse(text: str | bytes | None) -> dict[str, Out]:
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
                md5, size = out.get("md5"), out.get("size")
                outs[out["path"]] = Out(
                    stage=str(stage),
                    path=out["path"],
                    md5=str(md5) if md5 is not None else None,
                    size=size if isinstance(size, int) else None,
                )
    return outs


def read(lock: Path = DVC_LOCK) -> dict[str, Out]:
    """The outputs of the lock file at `lock`, keyed by path relative to the repository root (the lock's folder)."""
    return parse(lock.read_bytes()) if lock.exists() else {}


def locked_md5(path: Path, *, lock: Path = DVC_LOCK) -> str | None:
    """The md5 `lock` records for the output at `path` (any path that resolves to the same file), or None."""
    target = path.resolve()
    for out in read(lock).values():
        if (lock.parent / out.path).resolve() == target:
            return out.md5
    return None


def tracked_md5(text: str | bytes | None) -> str | None:
    """The md5 of the first output a .dvc file (e.g. data.dvc) records, or None when there is none."""
    try:
        document: Any = yaml.safe_load(text) if text is not None else None
        return str(document["outs"][0]["md5"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return None
