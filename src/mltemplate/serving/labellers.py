"""Who may label: the POST /feedback credentials (SERVE_FEEDBACK_TOKEN, or the file SERVE_FEEDBACK_TOKEN_FILE names),
a bearer token checked in constant time against every credential, and a rate limit per credential on the labels
it sends. `python -m mltemplate.serving.labellers local PATH` makes the token `make serve` uses locally."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mltemplate.errors import Error
from mltemplate.params import LABELLER_NAME

DEFAULT = "default"
"""The labeller a token without a name stands for."""
MIN_TOKEN = 16
TOKEN = re.compile(r"^[\x21-\x7e]+$")
"""A token: printable ASCII without spaces (base64, hex, ...), at least MIN_TOKEN characters."""


class CredentialsError(Error, ValueError):
    """The configured credentials are malformed: the service does not start."""


class Refused(Exception):
    """A request without a valid credential: 401 (none, or not a bearer token) or 403 (an unknown token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Credential:
    name: str
    digest: bytes
    """SHA-256 of the token: comparing digests takes the same time whatever the token's length."""


def parse(text: str, *, source: str) -> list[tuple[str, str]]:
    """(labeller, token) for each entry of `text`: one per line or comma, `name:token` or a bare token (the
    labeller DEFAULT); blank entries and lines starting with # are skipped. CredentialsError names the entry by its
    place, never by its secret."""
    entries = [
        entry.strip()
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for entry in line.split(",")
        if entry.strip()
    ]
    found: list[tuple[str, str]] = []
    for number, entry in enumerate(entries, start=1):
        name, sep, token = entry.partition(":")
        if not sep or not LABELLER_NAME.match(name):
            name, token = DEFAULT, entry
        if len(token) < MIN_TOKEN or not TOKEN.match(token):
            raise CredentialsError(
                f"{source}: credential {number} is not a token of at least {MIN_TOKEN} printable characters "
                f"without spaces (`name:token` or a bare token)"
            )
        found.append((name, token))
    names = [name for name, _ in found]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CredentialsError(f"{source}: labeller {repeated[0]!r} has more than one token")
    if len({token for _, token in found}) < len(found):
        raise CredentialsError(f"{source}: two labellers share a token (each needs its own)")
    return found


class Labellers:
    """The credentials the service accepts; empty when none is configured (POST /feedback is then off)."""

    def __init__(self, credentials: Sequence[tuple[str, str]] = ()) -> None:
        self.credentials = tuple(
            Credential(name, hashlib.sha256(token.encode()).digest()) for name, token in credentials
        )
        secret = "\n".join(sorted(token for _, token in credentials)).encode()
        self.secret = secret if credentials else None
        """What the request ids' signing key is derived from: the same in every worker and replica."""

    def __bool__(self) -> bool:
        return bool(self.credentials)

    def authenticate(self, authorization: str | None) -> str:
        """The labeller an `Authorization: Bearer <token>` header names; Refused (401, 403) otherwise."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(
                401, "POST /feedback needs `Authorization: Bearer <token>` (a SERVE_FEEDBACK_TOKEN credential)"
            )
        digest = hashlib.sha256(token.strip().encode()).digest()
        matched = None
        for credential in self.credentials:  # every one, match or not: the time taken says nothing of which
            if hmac.compare_digest(digest, credential.digest):
                matched = credential.name
        if matched is None:
            raise Refused(403, "the bearer token is not one of the service's feedback credentials")
        return matched


def load(token: str | None, token_file: Path | None) -> Labellers:
    """The credentials SERVE_FEEDBACK_TOKEN (`token`) or SERVE_FEEDBACK_TOKEN_FILE (`token_file`) holds."""
    if token is not None:
        source, text = "SERVE_FEEDBACK_TOKEN", token
    elif token_file is not None:
        source = f"SERVE_FEEDBACK_TOKEN_FILE={str(token_file)!r}"
        try:
            text = token_file.read_text(encoding="utf-8")
        except OSError as error:
            raise CredentialsError(f"{source}: {error.strerror}") from None
    else:
        return Labellers()
    found = parse(text, source=source)
    if not found:
        raise CredentialsError(f"{source} holds no credential")
    return Labellers(found)


class RateLimit:
    """A token bucket per labeller: `rate` labels a second, up to `burst` at once. One per worker."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets: dict[str, tuple[float, float]] = {}
        """labeller -> (labels available, when that was)."""

    def take(self, labeller: str, cost: int) -> float:
        """0 when `cost` labels may go now (and are taken); else the seconds until they may. A call of more than
        `burst` labels waits for a full bucket."""
        now = self.clock()
        level, then = self.buckets.get(labeller, (float(self.burst), now))
        level = min(float(self.burst), level + (now - then) * self.rate)
        cost = min(cost, self.burst)
        if level >= cost:
            self.buckets[labeller] = (level - cost, now)
            return 0.0
        self.buckets[labeller] = (level, now)
        return (cost - level) / self.rate


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))


def local_token(path: Path) -> str:
    """The token in `path`, made (random, readable by this user only) when the file does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    found = parse(path.read_text(encoding="utf-8"), source=str(path))
    if len(found) != 1:
        raise CredentialsError(f"{path}: expected one token, found {len(found)}")
    return found[0][1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.serving.labellers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local", help="make (or reuse) the local feedback token in PATH and say how to use it")
    local.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    token = local_token(args.path)
    print(f"serve: POST /feedback takes `Authorization: Bearer {token}` (the labeller {DEFAULT!r}; from {args.path})")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
