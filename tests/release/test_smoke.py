"""smoke.py: against a stub HTTP server for each way a service can be broken, and against a real `bentoml serve`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mltemplate import probe
from mltemplate.errors import CommandError
from mltemplate.release import smoke
from mltemplate.report import loadtest

Routes = dict[tuple[str, str], tuple[int, bytes]]
Start = Callable[[Routes], str]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "predict.json"


def stub(routes: Routes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = routes.get((method, self.path), (404, b"{}"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, *args: object) -> None:
            pass

    return Handler


ANSWER = {"predictions": [{"label": "x", "probabilities": {"x": 0.9, "y": 0.1}}]}
HEALTHY = {
    ("GET", "/readyz"): (200, b""),
    ("POST", "/predict"): (200, json.dumps(ANSWER).encode()),
    ("GET", "/metadata"): (
        200,
        json.dumps({"name": "m", "task": "binary", "classes": ["x", "y"], "release": {"version": "v1"}}).encode(),
    ),
}


@pytest.fixture
def serve_stub() -> Iterator[Start]:
    servers: list[ThreadingHTTPServer] = []

    def start(routes: Routes) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), stub(routes))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_smoke_passes_a_healthy_service(serve_stub: Start) -> None:
    seen = smoke.check(serve_stub(HEALTHY), example=EXAMPLE, expect_version="v1")
    assert seen["prediction"] == ANSWER


@pytest.mark.parametrize(
    ("task", "answer", "problem"),
    [
        ("regression", {"predictions": [{"value": 3.5}]}, None),
        ("regression", {"predictions": [{"label": "x"}]}, "a regression model must answer {'value': <number>}"),
        ("multiclass", {"predictions": [{"label": "z", "probabilities": {}}]}, "expected a label among ['x', 'y']"),
        (
            "binary",
            {"predictions": [{"label": "x", "probabilities": {"x": 1.0}}]},
            "expected a probability for each of",
        ),
        ("binary", {"predictions": []}, "expected a non-empty `predictions` list"),
    ],
)
def test_the_answer_must_follow_the_task(task: str, answer: dict[str, object], problem: str | None) -> None:
    found = smoke.answer_problem(answer, {"task": task, "classes": ["x", "y"]})
    assert found == problem if problem is None else found is not None and found.startswith(problem)


@pytest.mark.parametrize(
    ("route", "answer", "message"),
    [
        (("GET", "/readyz"), (503, b""), r"/readyz answered 503, expected 200"),
        (("POST", "/predict"), (500, b"boom"), r"POST .*/predict answered 500, expected 200: b'boom'"),
        (("POST", "/predict"), (200, b"<html>"), r"POST .*/predict answered 200 but not JSON"),
        (("POST", "/predict"), (200, b"{}"), r"POST .*/predict answered an empty document"),
        (("POST", "/predict"), (200, b'{"predictions": [{"value": 1}]}'), r"POST .*/predict: expected a label among"),
        (("GET", "/metadata"), (404, b"{}"), r"/metadata answered 404"),
    ],
)
def test_smoke_names_the_check_that_failed(
    serve_stub: Start, route: tuple[str, str], answer: tuple[int, bytes], message: str
) -> None:
    url = serve_stub({**HEALTHY, route: answer})
    with pytest.raises(CommandError, match=message):
        smoke.check(url, example=EXAMPLE)


def test_smoke_fails_on_another_release_version(serve_stub: Start) -> None:
    with pytest.raises(CommandError, match=r"reports versions \['v1'\], expected 'v2'"):
        smoke.check(serve_stub(HEALTHY), example=EXAMPLE, expect_version="v2")


def test_smoke_says_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{probe.free_port()}"
    assert probe.ready(url) is False
    with pytest.raises(CommandError, match="cannot reach"):
        smoke.check(url, example=EXAMPLE)


def test_smoke_refuses_other_schemes() -> None:
    with pytest.raises(CommandError, match="must be http"):
        smoke.check("file:///etc/passwd", example=EXAMPLE)


@pytest.mark.integration
def test_smoke_passes_the_real_service(pipeline_repo: Path) -> None:
    with loadtest.served(pipeline_repo) as url:
        seen = smoke.check(url, example=EXAMPLE)
    assert seen["metadata"]["version"]
    assert seen["prediction"]["model_version"] == seen["metadata"]["version"]
