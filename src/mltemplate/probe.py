"""Talking to a local service from outside: a free loopback port, and waiting until /readyz answers 200."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit


class NotReady(RuntimeError):
    """The service did not answer /readyz with 200 in time, or its process ended first."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(url: str, *, timeout: float = 2.0) -> bool:
    """Whether GET <url>/readyz answers 200 now."""
    if urlsplit(url).scheme not in {"http", "https"}:
        raise ValueError(f"service URLs must be http(s), got {url!r}")
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/readyz", timeout=timeout) as response:  # noqa: S310 (scheme checked)
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(
    url: str, *, timeout: float, exited: Callable[[], str | None] = lambda: None, interval: float = 0.2
) -> None:
    """Poll /readyz until it answers 200. Raises NotReady after `timeout` s, or as soon as `exited()` returns why
    the service's process is gone."""
    deadline = time.monotonic() + timeout
    while not ready(url):
        gone = exited()
        if gone is not None:
            raise NotReady(gone)
        if time.monotonic() > deadline:
            raise NotReady(f"not ready at {url}/readyz after {timeout:.0f}s")
        time.sleep(interval)
