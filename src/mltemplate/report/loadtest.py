"""Start the prediction service under a real `bentoml serve`, and load it from a bounded loopback client."""

from __future__ import annotations

import http.client
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mltemplate.probe import NotReady, free_port, wait_ready

SERVICE = "mltemplate.serving.service:PredictionService"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_CONCURRENCY = 1024
MAX_DURATION_S = 600.0
MAX_REQUESTS = 10_000_000
CLIENT_TIMEOUT_S = 30.0


class LoadTestError(RuntimeError):
    """The server did not come up, or a load run was asked for something outside its bounds."""


@dataclass(frozen=True)
class LoadStats:
    """What a load run saw; `errors` counts responses other than 2xx plus failed connections (status 0)."""

    requests: int
    errors: int
    duration_s: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    status_counts: dict[int, int]


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    # bentoml serve forks its workers into the session it was started in: signal the whole group.
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)
    else:
        # The arbiter is gone; make sure no worker of its group outlived it.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _exited(process: subprocess.Popen[bytes]) -> str | None:
    code = process.poll()
    return None if code is None else f"exited with {code}"


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class Server:
    """A running `bentoml serve`: its base URL, the process group of it and its workers, and its output."""

    url: str
    pgid: int
    log: Path


@contextmanager
def serving(
    repo: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    prefix: Sequence[str] = (),
    log: Path | None = None,
) -> Iterator[Server]:
    """Start `bentoml serve` of the service in `repo` (cwd=repo, on a free port if none), wait for /readyz, yield
    it; stop it (and its workers) after. `prefix`: a command that runs it (e.g. in a sandbox) and must exec it in
    the same process. Its output goes to `log` (kept), else to a temporary file."""
    repo = repo.resolve()
    port = port or free_port()
    child_env = dict(os.environ)
    # The service code of `repo`, not whichever copy the venv has installed.
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo / "src"), child_env.get("PYTHONPATH")]))
    child_env["BENTOML_DO_NOT_TRACK"] = "True"
    child_env.update(env or {})
    child_env["PORT"] = str(port)
    command = [*prefix, sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bentoml-serve-") as scratch:
        output = log or Path(scratch) / "serve.log"
        with output.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=repo, env=child_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            try:
                wait_ready(base, timeout=timeout, exited=lambda: _exited(process))
            except NotReady as error:
                raise LoadTestError(f"bentoml serve: {error}:\n{_tail(output)}") from None
            yield Server(base, process.pid, output)
        finally:
            _stop(process)


@contextmanager
def served(
    repo: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    prefix: Sequence[str] = (),
) -> Iterator[str]:
    """`serving`, yielding only the base URL http://127.0.0.1:PORT."""
    with serving(repo, port=port, env=env, timeout=timeout, prefix=prefix) as server:
        yield server.url


def _check_bounds(url: str, *, concurrency: int, duration: float | None, requests: int | None) -> None:
    host = urlsplit(url).hostname
    if urlsplit(url).scheme != "http" or host not in LOOPBACK:
        raise LoadTestError(f"measure only loads http:// on loopback ({sorted(LOOPBACK)}), got {url!r}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise LoadTestError(f"concurrency must be in 1..{MAX_CONCURRENCY}, got {concurrency}")
    if duration is None and requests is None:
        raise LoadTestError("give a duration (s) or a request count; an unbounded run is not allowed")
    if duration is not None and not 0 < duration <= MAX_DURATION_S:
        raise LoadTestError(f"duration must be in (0, {MAX_DURATION_S:.0f}] s, got {duration}")
    if requests is not None and not 1 <= requests <= MAX_REQUESTS:
        raise LoadTestError(f"requests must be in 1..{MAX_REQUESTS}, got {requests}")


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(round(q * len(ordered) / 100, 9)))  # round: 95 * 100 / 100 must not become 96
    return ordered[min(rank, len(ordered)) - 1]


class _Run:
    """Shared state of one load run: a request budget, a deadline, and what each client saw."""

    def __init__(self, *, duration: float | None, requests: int | None) -> None:
        self.lock = threading.Lock()
        self.left = requests
        self.deadline = time.monotonic() + duration if duration is not None else None
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()

    def take(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        with self.lock:
            if self.left is None:
                return True
            if self.left <= 0:
                return False
            self.left -= 1
            return True

    def record(self, latencies: list[float], statuses: Counter[int]) -> None:
        with self.lock:
            self.latencies.extend(latencies)
            self.statuses.update(statuses)


def _client(url: str, body: bytes, run: _Run) -> None:
    parts = urlsplit(url)
    path = parts.path or "/"
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    connection: http.client.HTTPConnection | None = None
    while run.take():
        start = time.perf_counter()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=CLIENT_TIMEOUT_S)
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException):
            status = 0
            if connection is not None:
                connection.close()
            connection = None
        latencies.append((time.perf_counter() - start) * 1000)
        statuses[status] += 1
    if connection is not None:
        connection.close()
    run.record(latencies, statuses)


def measure(
    url: str, body: bytes, *, concurrency: int, duration: float | None = None, requests: int | None = None
) -> LoadStats:
    """POST body to url with `concurrency` parallel clients until duration or request count; bounded, loopback only.
    A Python client (threads, keep-alive): right for short runs and correctness under load; the benchmark uses
    wrk for throughput, since this client needs a core of its own at a few thousand requests/s."""
    _check_bounds(url, concurrency=concurrency, duration=duration, requests=requests)
    run = _Run(duration=duration, requests=requests)
    threads = [threading.Thread(target=_client, args=(url, body, run), daemon=True) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ordered = sorted(run.latencies)
    total = len(ordered)
    errors = sum(count for status, count in run.statuses.items() if not 200 <= status < 300)
    return LoadStats(
        requests=total,
        errors=errors,
        duration_s=round(elapsed, 3),
        rps=round(total / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(_percentile(ordered, 50), 2),
        p95_ms=round(_percentile(ordered, 95), 2),
        p99_ms=round(_percentile(ordered, 99), 2),
        status_counts=dict(sorted(run.statuses.items())),
    )
