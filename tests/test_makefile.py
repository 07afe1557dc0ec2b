"""The Makefile is the single list of what can be run: every target has help text and is documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def targets() -> list[str]:
    return re.findall(r"^([a-zA-Z_-]+):.*## ", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)


def test_make_help_lists_every_target() -> None:
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert targets()
    for target in targets():
        assert f"make {target} " in listed


def test_every_target_is_documented() -> None:
    text = "\n".join(path.read_text() for path in DOCS if path.exists())
    undocumented = [t for t in targets() if f"make {t}" not in text and f"`{t}`" not in text]
    assert undocumented == []


def test_ci_entry_point_runs_make_test() -> None:
    script = (ROOT / ".ci/run").read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    assert script.rstrip().endswith("make test")
