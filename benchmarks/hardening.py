"""Cost of issue 21's hardening: the service as it is against the service as it was before (its src/ from git at
BASELINE, everything else, model included, from this checkout), both with their defaults (prediction log on, to a
SQLite file each), side by side, taking short turns in a balanced order as the prediction log's section does.
Target: the hardened service keeps at least 95% of the throughput of the one before, with zero errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks.monitoring import ORDER, TURN_S, _total
from benchmarks.service import BATCH_ROWS, CONNECTIONS, WARMUP_S, _bodies, _load
from mltemplate.report.loadtest import LoadStats, served

REPO = Path.cwd()
BASELINE = os.environ.get("BENCH_BASELINE", "11280cf")
"""main before the hardening (the merge of the `identity` branch); BENCH_BASELINE=<commit> compares with another."""
TARGET_RATIO = 0.95
SERVED_FILES = ("models", "dvc.lock", "metrics.json", "examples")
"""What the service reads besides its code."""


def _baseline_copy(scratch: Path) -> Path:
    """A directory that serves the BASELINE code over this checkout's model."""
    copy = scratch / "baseline"
    copy.mkdir()
    for name in SERVED_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name)
        elif source.exists():
            shutil.copy2(source, copy / name)
    archive = subprocess.run(["git", "archive", BASELINE, "src"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(copy)], input=archive, check=True)
    return copy


@contextmanager
def _services(scratch: Path) -> Iterator[dict[str, str]]:
    def env(name: str) -> dict[str, str]:
        return {
            "MONITORING_DB_URL": f"sqlite:///{scratch / name / 'log.db'}",
            "MONITORING_SPOOL_DIR": str(scratch / name / "spool"),
        }

    with ExitStack() as stack:
        yield {
            "before": stack.enter_context(served(_baseline_copy(scratch), env=env("before"))),
            "hardened": stack.enter_context(served(REPO, env=env("hardened"))),
        }


def run() -> str:
    """The `## Hardening` section of BENCHMARKS.md."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", BASELINE], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except subprocess.CalledProcessError:
        return f"## Hardening\n\nSkipped: commit {BASELINE} (BENCH_BASELINE) is not in this clone.\n"
    bodies = _bodies()
    order = tuple("before" if mode == "off" else "hardened" for mode in ORDER)
    results: dict[tuple[int, str], list[LoadStats]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hardening-") as scratch, _services(Path(scratch)) as urls:
        for size, body in bodies.items():
            for mode in ("before", "hardened"):
                _load(f"{urls[mode]}/predict", body, duration=WARMUP_S)
            for mode in order:
                results.setdefault((size, mode), []).append(_load(f"{urls[mode]}/predict", body, duration=TURN_S))
    lines = [
        "## Hardening",
        "",
        f"The service against its code before issue 21's hardening (`src/` of {commit}, the same model), both with "
        f"their defaults (prediction log on, a SQLite file each), running side by side and taking {len(order)} turns "
        f"of {TURN_S:.1f} s in the balanced order {' '.join(order[:8])} (twice), after a {WARMUP_S:.0f} s warm-up "
        f"each; {CONNECTIONS} connections, bodies of 1 and {BATCH_ROWS} records.",
        "",
        "| Rows/request | Requests/s before | Requests/s hardened | Ratio | p99 ms before | p99 ms hardened | Errors |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdict = []
    for size in bodies:
        _, _, rps_before, p99_before = _total(results[(size, "before")])
        _, errors, rps_after, p99_after = _total(results[(size, "hardened")])
        ratio = rps_after / rps_before if rps_before else 0.0
        lines.append(
            f"| {size} | {rps_before:,.0f} | {rps_after:,.0f} | {ratio:.0%} | {p99_before:.1f} | {p99_after:.1f} "
            f"| {errors} |"
        )
        ok = ratio >= TARGET_RATIO and errors == 0
        verdict.append(
            f"- {'met' if ok else 'MISSED'}: {size}-record requests keep {ratio:.0%} of the throughput before the "
            f"hardening with {errors} errors (target >= {TARGET_RATIO:.0%}, 0 errors)"
        )
    return "\n".join([*lines, "", *verdict, ""])
