"""Install uv VERSION as TARGET/bin/uv without pip: its wheel for this platform from PyPI, checked against the
sha256 PyPI lists. `make setup` runs this only when `python3 -m pip` is missing (e.g. Debian's python3 without
python3-pip); standard library only, since nothing else can be assumed there.

Usage: python3 tools/install_uv.py VERSION TARGET
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import sys
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

# PyPI's simple index as JSON (PEP 691), the API every mirror serves too.
INDEX = "https://pypi.org/simple/uv/"


def platform_key() -> tuple[str, str, str]:
    """(system, machine, libc) as the wheel names spell them."""
    machine = platform.machine().lower()
    if sys.platform.startswith("linux"):
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
        return "linux", machine, "manylinux" if platform.libc_ver()[0] == "glibc" else "musllinux"
    if sys.platform == "darwin":
        return "darwin", machine, ""
    return sys.platform, machine, ""


def pick_wheel(filenames: Sequence[str], system: str, machine: str, libc: str) -> str:
    """The wheel of this platform among a release's files; ValueError naming the platform if there is none."""
    for name in filenames:
        if not name.endswith(".whl"):
            continue
        tags = name[: -len(".whl")].split("-")[-1]
        if system == "linux" and libc in tags and tags.endswith(f"_{machine}"):
            return name
        if system == "darwin" and "macosx" in tags and (tags.endswith(f"_{machine}") or "universal2" in tags):
            return name
    raise ValueError(f"uv has no wheel for {system} {machine} {libc}".rstrip() + f" among {sorted(filenames)}")


def install(version: str, target: Path) -> Path:
    """Download, verify and unpack uv's executable; returns its path."""
    request = urllib.request.Request(INDEX, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (a fixed https URL)
        listed = json.load(response)["files"]
    files = {f["filename"]: f for f in listed if f["filename"].startswith(f"uv-{version}-")}
    if not files:
        raise ValueError(f"PyPI lists no files for uv {version}")
    chosen = files[pick_wheel(list(files), *platform_key())]
    with urllib.request.urlopen(chosen["url"], timeout=300) as response:  # noqa: S310 (https URL from PyPI)
        data = response.read()
    if hashlib.sha256(data).hexdigest() != chosen["hashes"]["sha256"]:
        raise ValueError(f"{chosen['filename']}: sha256 differs from the one PyPI lists; not installed")
    executable = target / "bin" / "uv"
    executable.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        executable.write_bytes(wheel.read(f"uv-{version}.data/scripts/uv"))
    executable.chmod(0o755)
    return executable


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print(f"installed {install(argv[0], Path(argv[1]))} (uv {argv[0]}, from PyPI)")
    except (OSError, ValueError, KeyError) as error:
        print(f"error: installing uv {argv[0]} into {argv[1]}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
