"""Install the CML binary VERSION (linux-x64) into TARGET/VERSION/cml from its GitHub release, verified against the
sha256 in tools/cml/SHA256SUMS before it is made executable, and put it on the job's PATH (GITHUB_PATH). Fails
closed: no pinned sha256 for the version, a download that does not match it, or another platform installs nothing.
A `cml` already on PATH that reports exactly VERSION (a runner image that ships it) is used as it is.
Standard library only: `make cml` runs it with the runner's python3 in the PR comment job, which installs nothing
else. Usage: python3 tools/install_cml.py VERSION TARGET
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

RELEASES = "https://github.com/iterative/cml/releases/download"
ASSET = "cml-linux-x64"
SUMS = Path(__file__).resolve().parent / "cml" / "SHA256SUMS"
VERSION = re.compile(r"\d+\.\d+\.\d+")


def pinned_sha256(version: str, sums: Path = SUMS) -> str:
    """The sha256 SHA256SUMS pins for v<version>/cml-linux-x64; SystemExit saying how to pin it when there is none."""
    wanted = f"v{version}/{ASSET}"
    for line in sums.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 2 and not line.startswith("#") and fields[1] == wanted:
            if not re.fullmatch(r"[0-9a-f]{64}", fields[0]):
                raise SystemExit(f"error: {sums}: {fields[0]!r} is not a sha256 for {wanted}")
            return fields[0]
    raise SystemExit(
        f"error: {sums} pins no sha256 for {wanted}, so CML is not installed (it would run with the comment job's "
        f"token). A maintainer with GitHub access downloads {RELEASES}/v{version}/{ASSET}, checks it and adds the "
        f"line '<sha256>  {wanted}' to {sums.name} (see the comment at its top and docs/workflows.md)."
    )


def installed(version: str) -> str | None:
    """A `cml` on PATH that reports exactly `version`, if any."""
    found = shutil.which("cml")
    if found is None:
        return None
    reported = subprocess.run([found, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return found if reported == version else None


def download(url: str, dest: Path) -> str:
    """Stream `url` to `dest`; returns its sha256."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=120) as response, dest.open("wb") as out:  # noqa: S310 - https URL
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def install(version: str, target: Path, *, releases: str = RELEASES, sums: Path = SUMS) -> Path:
    if not VERSION.fullmatch(version):
        raise SystemExit(f"error: {version!r} is not a CML version (X.Y.Z)")
    if (sys.platform, platform.machine().lower()) not in {("linux", "x86_64"), ("linux", "amd64")}:
        raise SystemExit(f"error: only {ASSET} is pinned; this is {sys.platform} {platform.machine()}")
    expected = pinned_sha256(version, sums)
    folder = target / version
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "cml.part"
    got = download(f"{releases}/v{version}/{ASSET}", partial)
    if got != expected:
        partial.unlink()
        raise SystemExit(f"error: {ASSET} v{version} has sha256 {got}, not the pinned {expected}: not installed")
    partial.chmod(0o755)
    partial.replace(folder / "cml")
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version")
    parser.add_argument("target", type=Path)
    parser.add_argument("--releases", default=RELEASES, help=argparse.SUPPRESS)  # the tests' local server
    args = parser.parse_args(argv)
    found = installed(args.version)
    if found:
        print(f"install_cml: {found} is CML {args.version}; using it")
        return
    folder = install(args.version, args.target, releases=args.releases)
    if os.environ.get("GITHUB_PATH"):
        with Path(os.environ["GITHUB_PATH"]).open("a", encoding="utf-8") as handle:
            handle.write(f"{folder.resolve()}\n")
    print(f"install_cml: CML {args.version} installed in {folder}, sha256 verified")


if __name__ == "__main__":
    main()
