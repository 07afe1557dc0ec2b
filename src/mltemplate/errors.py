"""The project's one base error, and how every command turns it into `error: <message>` and exit code 1."""

from __future__ import annotations

import sys
from collections.abc import Callable


class Error(Exception):
    """An expected failure (bad params, bad data, a missing model, ...): the message says what to do."""


class CommandError(Error, RuntimeError):
    """A command cannot go on; the message says why and what to do."""


def run(main: Callable[[], None]) -> int:
    """Call `main`; an Error prints `error: <message>` on stderr and returns 1, anything else propagates."""
    try:
        main()
    except Error as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
