"""How every command of the project exits: expected errors become one line on stderr and exit code 1."""

from __future__ import annotations

import sys
from collections.abc import Callable

from mltemplate.params import ParamsError
from mltemplate.schema import DataError


class CommandError(RuntimeError):
    """A command cannot go on; the message says why and what to do."""


EXPECTED = (ParamsError, DataError, CommandError)


def run(main: Callable[[], None]) -> int:
    """Call `main`; an expected error prints `error: <message>` and returns 1, anything else propagates."""
    try:
        main()
    except EXPECTED as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
