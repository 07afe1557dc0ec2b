"""Cost of the prediction log: the BentoML service with the log on (SQLite, the default store) against the same
service with it off (SERVE_PREDICTION_LOG=false), single-record and batched requests, in one run on this machine.
Both services run side by side and take many short turns in a balanced order (drift of the machine during the run
falls on both alike). Target: at least 90% of the throughput without logging, zero errors, every answered record
logged."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks.service import BATCH_ROWS, CONNECTIONS, WARMUP_S, _bodies, _load
from mltemplate.monitoring import migrations, store
from mltemplate.report.loadtest import LoadStats, served

REPO = Path.cwd()
TARGET_RATIO = 0.9
ORDER = ("off", "on", "on", "off", "on", "off", "off", "on") * 2
"""The turns, balanced (ABBA BAAB, twice): a trend over the run adds as much to one service as to the other."""
TURN_S = 5.0
"""Each service gets 40 s of load per body in all."""


@contextmanager
def _services(scratch: Path) -> Iterator[dict[str, str]]:
    url = f"sqlite:///{scratch / 'log.db'}"
    with ExitStack() as stack:
        yield {
            "off": stack.enter_context(served(REPO, env={"SERVE_PREDICTION_LOG": "false"})),
            "on": stack.enter_context(
                served(REPO, env={"MONITORING_DB_URL": url, "MONITORING_SPOOL_DIR": str(scratch / "spool")})
            ),
        }


def _total(parts: list[LoadStats]) -> tuple[int, int, float, float]:
    """requests, errors, requests/s over all turns, and the worst turn's p99."""
    requests = sum(p.requests for p in parts)
    seconds = sum(p.duration_s for p in parts)
    return requests, sum(p.errors for p in parts), requests / seconds if seconds else 0.0, max(p.p99_ms for p in parts)


def run() -> str:
    """The `## Prediction log` section of BENCHMARKS.md."""
    bodies = _bodies()
    results: dict[tuple[int, str], list[LoadStats]] = {}
    answered = 0
    with tempfile.TemporaryDirectory(prefix="bench-log-") as scratch:
        with _services(Path(scratch)) as urls:
            for size, body in bodies.items():
                for mode in ("off", "on"):
                    warm = _load(f"{urls[mode]}/predict", body, duration=WARMUP_S)
                    answered += (warm.requests - warm.errors) * size if mode == "on" else 0
                for mode in ORDER:
                    stats = _load(f"{urls[mode]}/predict", body, duration=TURN_S)
                    results.setdefault((size, mode), []).append(stats)
                    answered += (stats.requests - stats.errors) * size if mode == "on" else 0
        # The services have stopped: the log has flushed what it held (SIGTERM).
        db = migrations.open_store(f"sqlite:///{Path(scratch) / 'log.db'}")
        logged = store.count_predictions(db)
        db.dispose()
    lines = [
        "## Prediction log",
        "",
        f"The service with the prediction log on (SQLite file, one row per request written by a batching thread) and "
        f"off, both running and taking {len(ORDER)} turns of {TURN_S:.1f} s in the balanced order "
        f"{' '.join(ORDER[:8])} (twice), after a {WARMUP_S:.0f} s warm-up each; {CONNECTIONS} connections, bodies of "
        f"1 and {BATCH_ROWS} records. "
        f"Records in the 2xx answers the load client counted for the logging service: {answered:,}; records in its "
        f"log after it stopped: {logged:,} (the client does not count answers still in flight when a turn ends).",
        "",
        "| Rows/request | Requests/s off | Requests/s on | Ratio | p99 ms off | p99 ms on | Errors on |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdict = []
    for size in bodies:
        _, _, rps_off, p99_off = _total(results[(size, "off")])
        _, errors, rps_on, p99_on = _total(results[(size, "on")])
        ratio = rps_on / rps_off if rps_off else 0.0
        lines.append(
            f"| {size} | {rps_off:,.0f} | {rps_on:,.0f} | {ratio:.0%} | {p99_off:.1f} | {p99_on:.1f} | {errors} |"
        )
        ok = ratio >= TARGET_RATIO and errors == 0
        verdict.append(
            f"- {'met' if ok else 'MISSED'}: {size}-record requests keep {ratio:.0%} of the throughput with "
            f"{errors} errors (target >= {TARGET_RATIO:.0%}, 0 errors)"
        )
    verdict.append(
        f"- {'met' if logged >= answered else 'MISSED'}: every answered record logged ({logged:,} >= {answered:,})"
    )
    return "\n".join([*lines, "", *verdict, ""])
