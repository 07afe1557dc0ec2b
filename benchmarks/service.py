"""Serving benchmark: in-process predict_proba, the naive Flask baseline and the BentoML service, measured in one
run on this machine with the same model and the same request bodies. Load comes from wrk (Debian package `wrk`,
a C client that leaves the cores to the servers); without it, from mltemplate.report.loadtest's Python client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mltemplate.model import load
from mltemplate.predict import predict_proba
from mltemplate.report.loadtest import LoadStats, free_port, measure, served
from tests.service_client import json_records

REPO = Path.cwd()
CONNECTIONS = 32
DURATION_S = 20.0
WARMUP_S = 3.0
BATCH_ROWS = 256
TARGET_RATIO = 3.0
TARGET_P99_MS = 250.0
TARGET_ROWS_PER_S = 40_000.0

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BENCH_BODY"), "rb"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non2xx": %d, "socket": %d, "p50": %d, "p95": %d, "p99": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Row:
    server: str
    rows_per_request: int
    stats: LoadStats
    rss_mib: float

    @property
    def rows_per_s(self) -> float:
        return self.stats.rps * self.rows_per_request


def _bodies() -> dict[int, bytes]:
    example = json.loads((REPO / "examples/predict.json").read_text(encoding="utf-8"))
    features = list(example["records"][0])
    test = json_records(pd.read_csv(REPO / "data/prepared/test.csv")[features])
    batch = (test * (BATCH_ROWS // len(test) + 1))[:BATCH_ROWS]
    return {1: json.dumps(example).encode(), BATCH_ROWS: json.dumps({"records": batch}).encode()}


def _wrk(url: str, body: bytes, *, duration: float) -> LoadStats:
    with tempfile.TemporaryDirectory() as scratch:
        script, body_file = Path(scratch) / "post.lua", Path(scratch) / "body.json"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        body_file.write_bytes(body)
        command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration:.0f}s", "--timeout", "10s", "-s", str(script), url]
        output = subprocess.run(
            command, env={**os.environ, "BENCH_BODY": str(body_file)}, capture_output=True, text=True, check=True
        ).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    raw = json.loads(line.removeprefix("BENCH "))
    seconds = raw["duration_us"] / 1e6
    errors = raw["non2xx"] + raw["socket"]
    return LoadStats(
        requests=raw["requests"],
        errors=errors,
        duration_s=round(seconds, 3),
        rps=round(raw["requests"] / seconds, 1),
        p50_ms=raw["p50"] / 1000,
        p95_ms=raw["p95"] / 1000,
        p99_ms=raw["p99"] / 1000,
        status_counts={},  # wrk counts errors, not each status
    )


def _load(url: str, body: bytes, *, duration: float) -> LoadStats:
    if shutil.which("wrk"):
        return _wrk(url, body, duration=duration)
    return measure(url, body, concurrency=CONNECTIONS, duration=duration)


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of `pid` and all its descendants (the server's workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total_kib, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total_kib += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kib / 1024


def _listener_pid(port: int) -> int:
    """The pid that owns the listening socket on `port` (found through /proc/net/tcp inodes)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":
                inodes.add(parts[9])
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return int(fd.parent.parent.name)
    raise RuntimeError(f"no process listens on port {port}")


@contextmanager
def _flask() -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.flask_baseline", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/", timeout=1)  # noqa: S310 (loopback)
            except urllib.error.HTTPError:
                break  # 404 on / means the app is up
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Flask baseline did not start") from None
                time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


def _measure_server(name: str, url: str, pid: int, bodies: dict[int, bytes]) -> list[Row]:
    rows = []
    for size, body in bodies.items():
        _load(f"{url}/predict", body, duration=WARMUP_S)
        stats = _load(f"{url}/predict", body, duration=DURATION_S)
        rows.append(Row(name, size, stats, _tree_rss_mib(pid)))
    return rows


def _in_process() -> list[str]:
    trained = load(model_path=REPO / "models/model.skops", metadata_path=REPO / "models/metadata.json")
    test = pd.read_csv(REPO / "data/prepared/test.csv")[list(trained.schema.features)].to_dict("records")
    lines = []
    for size in (1, 1024):
        records = (test * (size // len(test) + 1))[:size]
        number = 200 if size == 1 else 20
        seconds = min(timeit.repeat(lambda r=records: predict_proba(trained, r), number=number, repeat=3))
        per_call = seconds / number
        lines.append(f"| {size:,} | {per_call * 1000:.2f} | {size / per_call:,.0f} |")
    return lines


def _table(rows: list[Row]) -> list[str]:
    out = [
        "| Server | Rows/request | Requests/s | Rows/s | p50 ms | p95 ms | p99 ms | Errors | Server RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        s = row.stats
        out.append(
            f"| {row.server} | {row.rows_per_request} | {s.rps:,.0f} | {row.rows_per_s:,.0f} | {s.p50_ms:.1f} "
            f"| {s.p95_ms:.1f} | {s.p99_ms:.1f} | {s.errors} of {s.requests:,} | {row.rss_mib:.0f} |"
        )
    return out


def _verdict(flask: list[Row], bento: list[Row]) -> list[str]:
    single, batch = bento[0], bento[1]
    ratio = single.stats.rps / flask[0].stats.rps if flask[0].stats.rps else float("inf")
    batch_ratio = batch.rows_per_s / flask[1].rows_per_s if flask[1].rows_per_s else float("inf")
    checks = [
        (f"single-record requests/s vs Flask: **{ratio:.2f}x**", ratio >= TARGET_RATIO, f">= {TARGET_RATIO:.0f}x"),
        (f"single-record errors: {single.stats.errors}", single.stats.errors == 0, "0"),
        (f"single-record p99: {single.stats.p99_ms:.0f} ms", single.stats.p99_ms < TARGET_P99_MS, "< 250 ms"),
        (
            f"{BATCH_ROWS}-record rows/s: {batch.rows_per_s:,.0f} ({batch_ratio:.2f}x Flask)",
            batch.rows_per_s >= TARGET_ROWS_PER_S,
            f">= {TARGET_ROWS_PER_S:,.0f}",
        ),
    ]
    return [f"- {'met' if ok else 'MISSED'}: {text} (target {target})" for text, ok, target in checks]


def run() -> str:
    """The `## Prediction service` section of BENCHMARKS.md."""
    bodies = _bodies()
    client = "wrk (1 thread)" if shutil.which("wrk") else "mltemplate.report.loadtest (Python threads; install wrk)"
    in_process = _in_process()
    with _flask() as (url, pid):
        flask = _measure_server("Flask baseline (`app.run`)", url, pid, bodies)
    with served(REPO, env={}) as url:
        pid = _listener_pid(int(url.rsplit(":", 1)[1]))
        bento = _measure_server("BentoML service (`bentoml serve`)", url, os.getpgid(pid), bodies)
    settings = {k: v for k, v in os.environ.items() if k.startswith("SERVE_")} or "defaults (docs/service.md)"
    return "\n".join(
        [
            "## Prediction service",
            "",
            f"Load: {client}, {CONNECTIONS} connections for {DURATION_S:.0f} s after a {WARMUP_S:.0f} s warm-up, on "
            f"the same cores as the servers. Bodies: examples/predict.json, and {BATCH_ROWS} test-set records. "
            f"Service settings: {settings}.",
            "",
            "In-process `predict.predict_proba` (the function `evaluate` and the service share):",
            "",
            "| Rows | ms/call | Rows/s |",
            "|---:|---:|---:|",
            *in_process,
            "",
            *_table(flask + bento),
            "",
            *_verdict(flask, bento),
            "",
        ]
    )
