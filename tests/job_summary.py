"""pytest plugin: in GitHub Actions (GITHUB_STEP_SUMMARY set), add the test counts and failures to the job summary."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
_started: list[float] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _started.append(time.monotonic())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary or hasattr(terminalreporter.config, "workerinput"):  # an xdist worker: the controller reports
        return
    counts = {outcome: len(terminalreporter.stats.get(outcome, [])) for outcome in OUTCOMES}
    failed = [report.nodeid for key in ("failed", "error") for report in terminalreporter.stats.get(key, [])]
    duration = time.monotonic() - _started[0] if _started else 0.0
    lines = [
        f"### Tests: {'✅ passed' if exitstatus == 0 else '❌ failed'}",
        "",
        "| " + " | ".join(OUTCOMES) + " | time |",
        "|" + "---:|" * (len(OUTCOMES) + 1),
        "| " + " | ".join(str(counts[o]) for o in OUTCOMES) + f" | {duration:.0f} s |",
        "",
        *[f"- `{nodeid}`" for nodeid in failed],
        "",
    ]
    with Path(summary).open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
