"""Cost of the prediction log: the BentoML service with the log on (SQLite, the default store) against the same
service with it off (SERVE_PREDICTION_LOG=false), single-record and batched requests, in one run on this machine.
Target: at least 90% of the throughput without logging, zero errors, every answered record logged."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks.service import (
    BATCH_ROWS,
    CONNECTIONS,
    DURATION_S,
    WARMUP_S,
    Row,
    _bodies,
    _listener_pid,
    _measure_server,
)
from mltemplate.monitoring import store
from mltemplate.report.loadtest import served

REPO = Path.cwd()
TARGET_RATIO = 0.9


def _measure(name: str, env: dict[str, str]) -> list[Row]:
    with served(REPO, env=env) as url:
        pid = _listener_pid(int(url.rsplit(":", 1)[1]))
        return _measure_server(name, url, os.getpgid(pid), _bodies())


def run() -> str:
    """The `## Prediction log` section of BENCHMARKS.md."""
    with tempfile.TemporaryDirectory(prefix="bench-log-") as scratch:
        off = _measure("log off", {"SERVE_PREDICTION_LOG": "false"})
        url = f"sqlite:///{Path(scratch) / 'log.db'}"
        on = _measure("log on (SQLite)", {"MONITORING_DB_URL": url, "MONITORING_SPOOL_DIR": f"{scratch}/spool"})
        db = store.open_store(url)
        logged = store.count_predictions(db)
        db.dispose()
    lines = [
        "## Prediction log",
        "",
        f"The service with the prediction log on (SQLite file, batched writer thread) and off; {CONNECTIONS} "
        f"connections, {DURATION_S:.0f} s after a {WARMUP_S:.0f} s warm-up, bodies of 1 and {BATCH_ROWS} records. "
        f"Records logged during the run (warm-ups included): {logged:,}.",
        "",
        "| Rows/request | Requests/s off | Requests/s on | Ratio | p99 ms off | p99 ms on | Errors on |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdict = []
    for without, with_log in zip(off, on, strict=True):
        ratio = with_log.stats.rps / without.stats.rps if without.stats.rps else 0.0
        lines.append(
            f"| {without.rows_per_request} | {without.stats.rps:,.0f} | {with_log.stats.rps:,.0f} | {ratio:.0%} | "
            f"{without.stats.p99_ms:.1f} | {with_log.stats.p99_ms:.1f} | {with_log.stats.errors} |"
        )
        ok = ratio >= TARGET_RATIO and with_log.stats.errors == 0
        verdict.append(
            f"- {'met' if ok else 'MISSED'}: {without.rows_per_request}-record requests keep {ratio:.0%} of the "
            f"throughput with {with_log.stats.errors} errors (target >= {TARGET_RATIO:.0%}, 0 errors)"
        )
    return "\n".join([*lines, "", *verdict, ""])
