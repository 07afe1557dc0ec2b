"""Protocols side by side, in one run on this machine: a typed BentoML endpoint that does no work (the stack's
ceiling), `mlflow models serve` of the registered model, and the prediction service on records (/predict), MLflow's
protocol (/invocations) and the Open Inference Protocol (V2), each with 1 and 256 rows a request. Goals on 2 cores:
V2 with 256 rows >= 150,000 rows/s; single-record requests on every path of the service >= 90% of the ceiling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from benchmarks.service import BATCH_ROWS, CONNECTIONS, DURATION_S, WARMUP_S, _listener_pid, _load, _tree_rss_mib
from mltemplate.model_metadata import read_model_metadata
from mltemplate.probe import NotReady, free_port, wait_ready
from mltemplate.report.loadtest import LoadStats, _stop, served

REPO = Path.cwd()
TARGET_V2_ROWS_PER_S = 150_000.0
TARGET_CEILING_SHARE = 0.9


@dataclass(frozen=True)
class Measured:
    server: str
    path: str
    rows: int
    stats: LoadStats
    rss_mib: float

    @property
    def rows_per_s(self) -> float:
        return self.stats.rps * self.rows


def bodies(rows: int) -> dict[str, bytes]:
    """The same test-set rows as each protocol's body: records, dataframe_split, V2 tensors."""
    meta = read_model_metadata(REPO / "models/metadata.json")
    schema = meta.input_schema
    test = pd.read_csv(REPO / "data/prepared/test.csv")[list(schema.features)]
    frame = pd.concat([test] * (rows // len(test) + 1), ignore_index=True).head(rows)
    records = json.loads(frame.to_json(orient="records"))
    if schema.categorical:  # one tensor per feature
        inputs = [
            {
                "name": n,
                "shape": [rows],
                "datatype": "FP64" if n in schema.numeric else "BYTES",
                "data": frame[n].tolist(),
            }
            for n in schema.features
        ]
    else:  # one [rows, features] tensor: the columnar fast path
        inputs = [
            {
                "name": "input-0",
                "shape": [rows, len(schema.features)],
                "datatype": "FP64",
                "data": frame.to_numpy().ravel().tolist(),
            }
        ]
    return {
        "/predict": json.dumps({"records": records}).encode(),
        "/invocations": json.dumps(
            {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
        ).encode(),
        f"/v2/models/{meta.name}/infer": json.dumps({"inputs": inputs}).encode(),
    }


@contextmanager
def _process(command: list[str], port: int, *, ready: str, env: dict[str, str] | None = None) -> Iterator[str]:
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if ready == "/ping":
            ScoringServerClient("127.0.0.1", port).wait_server_ready(timeout=180, scoring_server_proc=process)
        else:
            wait_ready(url, timeout=180, exited=lambda: None if process.poll() is None else "exited")
        yield url
    except NotReady as error:
        raise RuntimeError(f"{' '.join(command)}: {error}") from None
    finally:
        _stop(process)


def _noop() -> AbstractContextManager[str]:
    port = free_port()
    command = [sys.executable, "-m", "bentoml", "serve", "benchmarks.noop_service:NoOpService"]
    return _process([*command, "--host", "127.0.0.1", "--port", str(port)], port, ready="/readyz")


def _mlflow() -> AbstractContextManager[str]:
    from mlflow.tracking import MlflowClient

    name = read_model_metadata(REPO / "models/metadata.json").name
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO / 'mlflow.db'}"
    newest = max(int(v.version) for v in MlflowClient(tracking).search_model_versions(f"name = '{name}'"))
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}/{newest}"]
    command += ["--env-manager", "local", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    return _process(command, port, ready="/ping", env={"MLFLOW_TRACKING_URI": tracking})


def _measure(server: str, url: str, path: str, body: bytes, rows: int) -> Measured:
    _load(f"{url}{path}", body, duration=WARMUP_S)
    stats = _load(f"{url}{path}", body, duration=DURATION_S)
    port = int(url.rsplit(":", 1)[1])
    return Measured(server, path, rows, stats, _tree_rss_mib(os.getpgid(_listener_pid(port))))


def measure_all() -> list[Measured]:
    sizes = {1: bodies(1), BATCH_ROWS: bodies(BATCH_ROWS)}
    results = []
    with _noop() as url:
        results += [_measure("no-op BentoML endpoint", url, "/predict", sizes[n]["/predict"], n) for n in sizes]
    with _mlflow() as url:
        results += [_measure("`mlflow models serve`", url, "/invocations", sizes[n]["/invocations"], n) for n in sizes]
    with served(REPO, env={}) as url:
        for path in sizes[1]:
            results += [_measure("this service", url, path, sizes[n][path], n) for n in sizes]
    return results


def _table(results: list[Measured]) -> list[str]:
    out = [
        "| Server | Path | Rows/request | Requests/s | Rows/s | p50 ms | p99 ms | Errors | RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        s = m.stats
        path = "/v2/models/{name}/infer" if m.path.startswith("/v2/") else m.path
        out.append(
            f"| {m.server} | `{path}` | {m.rows} | {s.rps:,.0f} | {m.rows_per_s:,.0f} | {s.p50_ms:.1f} | "
            f"{s.p99_ms:.1f} | {s.errors} of {s.requests:,} | {m.rss_mib:.0f} |"
        )
    return out


def _verdict(results: list[Measured]) -> list[str]:
    ceiling = next(m for m in results if m.server.startswith("no-op") and m.rows == 1).stats.rps
    ours = [m for m in results if m.server == "this service"]
    v2 = next(m for m in ours if m.path.startswith("/v2/") and m.rows == BATCH_ROWS)
    lines = [
        f"- {'met' if v2.rows_per_s >= TARGET_V2_ROWS_PER_S else 'MISSED'}: V2 with {BATCH_ROWS} rows: "
        f"{v2.rows_per_s:,.0f} rows/s (goal >= {TARGET_V2_ROWS_PER_S:,.0f})"
    ]
    for m in (m for m in ours if m.rows == 1):
        share = m.stats.rps / ceiling if ceiling else 0.0
        ok = share >= TARGET_CEILING_SHARE and m.stats.errors == 0
        path = "V2 infer" if m.path.startswith("/v2/") else m.path
        lines.append(
            f"- {'met' if ok else 'MISSED'}: single records on `{path}`: {m.stats.rps:,.0f} requests/s, {share:.0%} of "
            f"the no-op ceiling ({ceiling:,.0f}), {m.stats.errors} errors "
            f"(goal >= {TARGET_CEILING_SHARE:.0%}, 0 errors)"
        )
    return lines


def run() -> str:
    """The `## Protocols` section of BENCHMARKS.md."""
    results = measure_all()
    settings = {k: v for k, v in os.environ.items() if k.startswith("SERVE_")} or "defaults (docs/service.md)"
    return "\n".join(
        [
            "## Protocols side by side",
            "",
            f"Load: wrk, {CONNECTIONS} connections for {DURATION_S:.0f} s after a {WARMUP_S:.0f} s warm-up per row, on "
            "the same cores as the servers; the same test-set rows as each protocol's body (records, "
            "`dataframe_split`, V2 tensors: one [rows, features] FP64 tensor for an all-numeric model, else one per "
            f"feature). Service settings: {settings}, the prediction log on (SQLite). `mlflow models serve` runs the "
            "registered model with 2 workers; the no-op endpoint is `benchmarks/noop_service.py` with 2 workers.",
            "",
            *_table(results),
            "",
            *_verdict(results),
            "",
        ]
    )
