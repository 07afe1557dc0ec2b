"""The Bento's requirements, every one with its hash from uv.lock, so the image installs with `--require-hashes`.
`bentoml build` appends an unhashed `bentoml==<version>` unless bentoml is named by a direct link, which would fail
hash checking: `python -m mltemplate.release.requirements FILE` rewrites `uv export`'s bentoml entry as its locked
wheel URL with that wheel's hash."""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mltemplate.errors import CommandError, run

LINKED = "bentoml"


def entries(text: str) -> list[str]:
    """The requirement entries of a requirements file, each with its continuation lines (`\\` at line end)."""
    found: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        current.append(line)
        if not line.rstrip().endswith("\\"):
            found.append("\n".join(current))
            current = []
    if current:
        found.append("\n".join(current))
    return found


def locked_wheel(lock: Mapping[str, Any], name: str) -> tuple[str, str]:
    """URL and hash of the one wheel uv.lock records for `name` (pure-Python packages have one)."""
    for package in lock.get("package", []):
        if package.get("name") == name:
            wheels = package.get("wheels") or []
            if len(wheels) != 1:
                raise CommandError(f"uv.lock: expected one wheel of {name}, found {len(wheels)}")
            return wheels[0]["url"], wheels[0]["hash"]
    raise CommandError(f"uv.lock: package {name!r} not found (is it a dependency in pyproject.toml?)")


def link(text: str, lock: Mapping[str, Any], name: str = LINKED) -> str:
    """`text` with `name`'s entry replaced by `name @ <wheel url> --hash=<hash>`, keeping its environment marker."""
    pattern = re.compile(rf"^{re.escape(name)}==[^\s;\\]+\s*(?P<marker>;[^\\\n]*)?", re.IGNORECASE)
    url, digest = locked_wheel(lock, name)
    out, replaced = [], False
    for entry in entries(text):
        found = pattern.match(entry)
        if found is None:
            out.append(entry)
            continue
        marker = (found.group("marker") or "").strip()
        out.append(f"{name} @ {url}{' ' + marker if marker else ''} \\\n    --hash={digest}")
        replaced = True
    if not replaced:
        raise CommandError(f"no pinned {name}==<version> entry to link in the requirements")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.release.requirements", description=__doc__)
    parser.add_argument("file", type=Path, help="requirements written by `uv export` (rewritten in place)")
    parser.add_argument("--lock", type=Path, default=Path("uv.lock"))
    args = parser.parse_args(argv)
    try:
        lock = tomllib.loads(args.lock.read_text(encoding="utf-8"))
        text = args.file.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise CommandError(f"{error.filename} not found") from None
    args.file.write_text(link(text, lock), encoding="utf-8")
    print(f"{args.file}: {LINKED} linked to its locked wheel; every requirement is hashed")


if __name__ == "__main__":
    sys.exit(run(main))
