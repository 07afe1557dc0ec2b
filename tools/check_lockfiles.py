"""Fail when a lock file lets an install fetch anything but what it pins from the configured index: in uv.lock every
package must come from PyPI (https://pypi.org/simple) with files on files.pythonhosted.org and a sha256 each (the
project itself is the one local entry); in every package-lock.json tracked by git every package must come from
https://registry.npmjs.org/ (or name no `resolved`, which npm then takes from that registry) with a sha512
`integrity`. A pull request that swaps a wheel URL and its hash, adds a git or path source, or drops a hash fails
`make lint` (the `lockfiles` pre-commit hook). Standard library only.

Usage: python3 tools/check_lockfiles.py [LOCK_FILE ...]   (default: uv.lock and the tracked package-lock.json files)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

PYPI_INDEX = "https://pypi.org/simple"
PYPI_FILES = "https://files.pythonhosted.org/packages/"
NPM_REGISTRY = "https://registry.npmjs.org/"
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
SHA512 = re.compile(r"sha512-[A-Za-z0-9+/]{86}==")
LOCAL_PROJECT = ({"editable": "."}, {"virtual": "."})


def uv_lock_problems(path: Path) -> list[str]:
    lock = tomllib.loads(path.read_text(encoding="utf-8"))
    problems = []
    for package in lock.get("package", []):
        name = f"{path}: {package.get('name')} {package.get('version', '')}".rstrip()
        source: dict[str, Any] = package.get("source", {})
        if source in LOCAL_PROJECT:
            continue
        if source != {"registry": PYPI_INDEX}:
            problems.append(f"{name}: source {source} is not the index {PYPI_INDEX}")
            continue
        files = ([package["sdist"]] if "sdist" in package else []) + list(package.get("wheels", []))
        if not files:
            problems.append(f"{name}: no file with a hash to install from")
        for file in files:
            url, digest = str(file.get("url", "")), str(file.get("hash", ""))
            if not url.startswith(PYPI_FILES):
                problems.append(f"{name}: {url or 'a file without url'} is not on {PYPI_FILES}")
            if not SHA256.fullmatch(digest):
                problems.append(f"{name}: {url.rsplit('/', 1)[-1]} has no sha256 hash ({digest or 'none'})")
    return problems


def npm_lock_problems(path: Path) -> list[str]:
    lock = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for key, package in lock.get("packages", {}).items():
        if key == "":  # the lock file's own project
            continue
        name = f"{path}: {key}"
        if package.get("link"):
            problems.append(f"{name}: links to {package.get('resolved')}, not a package of {NPM_REGISTRY}")
            continue
        resolved = package.get("resolved")
        if resolved is not None and not str(resolved).startswith(NPM_REGISTRY):
            problems.append(f"{name}: resolved from {resolved}, not {NPM_REGISTRY}")
        if not SHA512.fullmatch(str(package.get("integrity", ""))):
            problems.append(f"{name}: no sha512 integrity ({package.get('integrity') or 'none'})")
    return problems


def default_files() -> list[Path]:
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--", "uv.lock", "*package-lock.json"], capture_output=True, text=True, check=True
    ).stdout
    return [Path(name) for name in tracked.split("\0") if name]


def main(argv: list[str]) -> int:
    files = [Path(arg) for arg in argv] or default_files()
    problems = []
    for path in files:
        problems += uv_lock_problems(path) if path.name == "uv.lock" else npm_lock_problems(path)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_lockfiles: {len(files)} lock file(s) pin their index and hashes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
