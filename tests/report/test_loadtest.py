"""The load client: bounded, loopback only, and counting what the server really answered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mltemplate.report.loadtest import LoadTestError, _percentile, free_port, measure, served


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).count += 1
            status = 503 if type(self).count % 4 == 0 else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    """Answers every fourth POST with 503, the others with 200."""
    _Handler.count = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/predict"
    finally:
        server.shutdown()
        server.server_close()


def test_measure_sends_exactly_the_requests_asked_and_counts_statuses(local_server: str) -> None:
    stats = measure(local_server, b"{}", concurrency=4, requests=40)
    assert (stats.requests, stats.status_counts, stats.errors) == (40, {200: 30, 503: 10}, 10)
    assert 0 < stats.p50_ms <= stats.p95_ms <= stats.p99_ms
    assert stats.rps > 0


def test_measure_stops_at_the_duration(local_server: str) -> None:
    stats = measure(local_server, b"{}", concurrency=2, duration=0.3)
    assert stats.requests > 0
    assert 0.3 <= stats.duration_s < 5


def test_unreachable_server_counts_as_status_zero_errors() -> None:
    stats = measure(f"http://127.0.0.1:{free_port()}/predict", b"{}", concurrency=1, requests=3)
    assert (stats.errors, stats.status_counts) == (3, {0: 3})


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("http://example.com/predict", {"requests": 1}, "only loads http:// on loopback"),
        ("https://127.0.0.1/predict", {"requests": 1}, "only loads http:// on loopback"),
        ("http://127.0.0.1:1/predict", {}, "unbounded run is not allowed"),
        ("http://127.0.0.1:1/predict", {"duration": 601.0}, "duration must be in"),
        ("http://127.0.0.1:1/predict", {"requests": 0}, "requests must be in"),
    ],
)
def test_measure_refuses_runs_outside_its_bounds(url: str, options: dict[str, float], message: str) -> None:
    with pytest.raises(LoadTestError, match=message):
        measure(url, b"{}", concurrency=1, **options)  # type: ignore[arg-type]


def test_measure_refuses_too_many_clients() -> None:
    with pytest.raises(LoadTestError, match=r"concurrency must be in 1\.\.1024"):
        measure("http://127.0.0.1:1/", b"", concurrency=5000, requests=1)


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(i) for i in range(1, 101)]
    assert [_percentile(ordered, q) for q in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert (_percentile([7.0], 99), _percentile([], 50)) == (7.0, 0.0)


def test_served_reports_why_the_server_did_not_start(tmp_path: Path) -> None:
    with (
        pytest.raises(LoadTestError, match=r"(?s)bentoml serve: exited with .*run `make run` first"),
        served(tmp_path, timeout=60),
    ):
        pass
