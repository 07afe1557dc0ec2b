"""Check a workflow input against the pattern the workflow gives, before any step uses it: INPUT_NAME,
INPUT_PATTERN (a Python regular expression the whole value must match) and INPUT_VALUE from the environment."""

from __future__ import annotations

import re

from mltemplate.errors import CommandError


def check(name: str, pattern: str, value: str) -> str:
    """`value` if it matches all of `pattern` and holds no control character; CommandError otherwise."""
    if not pattern:
        raise CommandError(f"no pattern to check the input {name!r} against (INPUT_PATTERN)")
    if any(ord(char) < 32 or ord(char) == 127 for char in value) or not re.fullmatch(pattern, value):
        raise CommandError(f"input {name!r} = {value!r} does not match {pattern!r}: nothing was run")
    print(f"github: input {name!r} = {value!r} matches {pattern!r}")
    return value
