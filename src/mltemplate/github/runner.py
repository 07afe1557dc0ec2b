"""What a step tells the Actions runner: outputs (GITHUB_OUTPUT) and annotations (::notice::), safely."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

SAFE_OUTPUT = re.compile(r"[A-Za-z0-9_./:@+-]*")


def set_output(name: str, value: str, env: Mapping[str, str] = os.environ) -> None:
    """Append name=value to GITHUB_OUTPUT (and print it); values are plain tokens, never lines of their own."""
    if not SAFE_OUTPUT.fullmatch(value):
        raise ValueError(f"output {name}: {value!r} is not a plain value")
    print(f"{name}={value}")
    if env.get("GITHUB_OUTPUT"):
        with Path(env["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as handle:
            handle.write(f"{name}={value}\n")


def notice(text: str) -> None:
    """A notice annotation; newlines and `%` are escaped as the runner expects, so the text stays one message."""
    escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    print(f"::notice::{escaped}")
