"""An OCI registry seen through `skopeo` (no Docker engine needed): list tags, read a manifest's digest and labels,
copy an image to a tag. Credentials come from skopeo's usual auth files, which `login` writes
(`python -m mltemplate.release.oci login`: IMAGE's registry, user GITHUB_ACTOR, password REGISTRY_PASSWORD, given
to skopeo on its standard input); REGISTRY_TLS_VERIFY=false allows a plain-HTTP registry such as one on loopback in
the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mltemplate.errors import CommandError


@dataclass(frozen=True)
class Image:
    """One manifest in a registry (or an image archive): its digest and its OCI labels."""

    digest: str
    labels: Mapping[str, str]


def _tls(env: Mapping[str, str]) -> bool:
    return env.get("REGISTRY_TLS_VERIFY", "true").lower() not in {"false", "0", "no"}


def _skopeo(args: list[str], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["skopeo", *args], input=stdin, capture_output=True, text=True, check=False)
    except OSError as error:
        raise CommandError(f"skopeo is needed to talk to the image registry: {error}") from None


def _missing(stderr: str) -> bool:
    text = stderr.lower()
    return any(marker in text for marker in ("manifest unknown", "name unknown", "not found", "404"))


class Registry:
    """The tags of one image repository, e.g. ghcr.io/owner/repo."""

    def __init__(self, image: str, env: Mapping[str, str] | None = None) -> None:
        self.image = image
        self.tls = _tls(os.environ if env is None else env)

    def ref(self, tag_or_digest: str) -> str:
        separator = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"docker://{self.image}{separator}{tag_or_digest}"

    def tags(self) -> list[str]:
        """Every tag of the repository; none when the repository does not exist yet."""
        found = _skopeo(["list-tags", f"--tls-verify={str(self.tls).lower()}", f"docker://{self.image}"])
        if found.returncode != 0:
            if _missing(found.stderr):
                return []
            raise CommandError(f"cannot list the tags of {self.image}: {found.stderr.strip()}")
        return sorted(json.loads(found.stdout).get("Tags") or [])

    def inspect(self, tag_or_digest: str) -> Image | None:
        """The image under a tag or digest, or None when there is none."""
        return _inspect(self.ref(tag_or_digest), tls=self.tls, missing_ok=True)

    def copy(self, source: str, tag: str, *, source_tls: bool = True) -> str:
        """Copy `source` (a skopeo reference: docker://..., docker-archive:..., oci:...) to `tag`; returns the digest
        now under that tag. A copy within the registry keeps the manifest bytes, so the digest does not change."""
        with tempfile.TemporaryDirectory() as scratch:
            digest_file = Path(scratch) / "digest"
            args = ["copy", "--quiet", f"--dest-tls-verify={str(self.tls).lower()}", "--digestfile", str(digest_file)]
            if source.startswith("docker://"):
                args += [f"--src-tls-verify={str(source_tls).lower()}", "--preserve-digests"]
            copied = _skopeo([*args, source, self.ref(tag)])
            if copied.returncode != 0:
                raise CommandError(f"cannot copy {source} to {self.image}:{tag}: {copied.stderr.strip()}")
            return digest_file.read_text().strip()

    def retag(self, digest: str, tag: str) -> str:
        """Point `tag` at the manifest `digest` of this repository."""
        return self.copy(self.ref(digest), tag, source_tls=self.tls)


def inspect(ref: str) -> Image:
    """Digest and labels of any skopeo reference (a registry tag, a docker-archive file, an OCI layout)."""
    found = _inspect(ref, tls=True, missing_ok=False)
    if found is None:  # pragma: no cover - missing_ok=False raises instead
        raise CommandError(f"cannot read the image {ref}")
    return found


def _inspect(ref: str, *, tls: bool, missing_ok: bool) -> Image | None:
    args = ["inspect"]
    if ref.startswith("docker://"):
        args.append(f"--tls-verify={str(tls).lower()}")
    found = _skopeo([*args, ref])
    if found.returncode != 0:
        if missing_ok and _missing(found.stderr):
            return None
        raise CommandError(f"cannot read the image {ref}: {found.stderr.strip()}")
    raw = json.loads(found.stdout)
    return Image(digest=raw.get("Digest", ""), labels=raw.get("Labels") or {})


def login(image: str, env: Mapping[str, str]) -> str:
    """`skopeo login` to the registry of `image` as GITHUB_ACTOR with REGISTRY_PASSWORD; returns the registry."""
    registry = image.split("/", 1)[0]
    user, password = env.get("GITHUB_ACTOR", ""), env.get("REGISTRY_PASSWORD", "")
    if not user or not password:
        raise CommandError("set GITHUB_ACTOR and REGISTRY_PASSWORD (the workflow passes the job's token) to log in")
    args = ["login", f"--tls-verify={str(_tls(env)).lower()}", "--username", user, "--password-stdin", registry]
    done = _skopeo(args, stdin=password)
    if done.returncode != 0:
        raise CommandError(f"skopeo login {registry} failed: {done.stderr.strip()}")
    return registry


def main(argv: list[str] | None = None) -> None:
    import argparse

    from mltemplate.release.container import image_name

    parser = argparse.ArgumentParser(prog="python -m mltemplate.release.oci", description=__doc__)
    parser.add_argument("command", choices=["login"])
    parser.parse_args(argv)
    print(f"oci: logged in to {login(image_name(os.environ), os.environ)} as {os.environ['GITHUB_ACTOR']}")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
