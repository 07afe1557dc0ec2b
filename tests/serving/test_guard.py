"""The request guard, driven as plain ASGI: refusals happen before the app runs and say which field is at fault."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from mltemplate.serving.guard import RequestGuard
from mltemplate.serving.refusals import PACKAGE

Message = dict[str, Any]


class App:
    """Stands in for BentoML: records what reached it and answers with a fixed status and body."""

    def __init__(self, status: int = 200, body: dict[str, Any] | None = None, hold: asyncio.Event | None = None):
        self.status = status
        self.body = json.dumps(body or {"ok": True}).encode()
        self.hold = hold
        self.seen: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.seen.append(message.get("body", b""))
        if self.hold is not None:
            await self.hold.wait()
        await send(
            {"type": "http.response.start", "status": self.status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": self.body})


def _scope(method: str = "POST", path: str = "/predict", headers: dict[str, str] | None = None) -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "method": method, "path": path, "headers": raw}


async def _call(guard: RequestGuard, scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, dict[bytes, bytes], Any]:
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[Message] = []

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), json.loads(body)


def _guard(app: App, **limits: int) -> RequestGuard:
    options = {"max_body_bytes": 100, "max_concurrency": 2, "retry_after_s": 7, **limits}
    return RequestGuard(app, **options)  # type: ignore[arg-type]


JSON = {"Content-Type": "application/json"}


def test_json_post_within_limits_reaches_the_app() -> None:
    app = App()
    status, _, body = asyncio.run(_call(_guard(app), _scope(headers={**JSON, "Content-Length": "2"}), [b"{}"]))
    assert (status, body, app.seen) == (200, {"ok": True}, [b"{}"])


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_non_json_content_type_gets_415_naming_the_header(content_type: str | None) -> None:
    app = App()
    headers = {"Content-Type": content_type} if content_type else {}
    status, _, body = asyncio.run(_call(_guard(app), _scope(headers=headers), [b"{}"]))
    assert (status, body["field"], app.seen) == (415, "Content-Type", [])


def test_declared_oversized_body_gets_413_unread() -> None:
    app = App()
    status, _, body = asyncio.run(_call(_guard(app), _scope(headers={**JSON, "Content-Length": "101"}), [b"x" * 101]))
    assert (status, body["field"], app.seen) == (413, "body", [])
    assert "101 bytes" in body["error"]
    assert "100 bytes" in body["error"]


def test_chunked_body_over_the_limit_gets_413() -> None:
    app = App()
    status, _, _ = asyncio.run(_call(_guard(app), _scope(headers=JSON), [b"x" * 60, b"x" * 60]))
    assert (status, app.seen) == (413, [])


def test_chunked_body_within_the_limit_is_replayed_whole() -> None:
    app = App()
    status, _, _ = asyncio.run(_call(_guard(app), _scope(headers=JSON), [b'{"a":', b" 1}"]))
    assert (status, app.seen) == (200, [b'{"a": 1}'])


def test_bad_content_length_gets_400() -> None:
    status, _, body = asyncio.run(_call(_guard(App()), _scope(headers={**JSON, "Content-Length": "ten"}), [b"{}"]))
    assert (status, body["field"]) == (400, "Content-Length")


def test_requests_past_the_concurrency_limit_get_429_with_retry_after() -> None:
    async def scenario() -> list[tuple[int, dict[bytes, bytes], Any]]:
        hold = asyncio.Event()
        guard = _guard(App(hold=hold), max_concurrency=2)
        held = [asyncio.create_task(_call(guard, _scope(headers=JSON), [b"{}"])) for _ in range(2)]
        await asyncio.sleep(0.01)
        refused = await _call(guard, _scope(headers=JSON), [b"{}"])
        hold.set()
        return [refused, *await asyncio.gather(*held)]

    (status, headers, _), *served = asyncio.run(scenario())
    assert (status, headers[b"retry-after"]) == (429, b"7")
    assert [s for s, _, _ in served] == [200, 200]


def test_probes_pass_even_at_the_concurrency_limit() -> None:
    app = App()
    guard = _guard(app, max_concurrency=1)
    guard.active = 1
    status, _, _ = asyncio.run(_call(guard, _scope(method="GET", path="/readyz"), [b""]))
    assert status == 200


def test_retry_after_is_added_to_503_from_the_app() -> None:
    status, headers, _ = asyncio.run(_call(_guard(App(status=503)), _scope(headers=JSON), [b"{}"]))
    assert (status, headers[b"retry-after"]) == (503, b"7")


def test_400_from_the_app_gets_the_first_field_up_front() -> None:
    detail = [{"type": "missing", "loc": ["records", 0, "age"], "msg": "Field required"}]
    app = App(status=400, body={"error": "1 validation error for PredictRequest", "detail": detail})
    status, headers, body = asyncio.run(_call(_guard(app), _scope(headers=JSON), [b"{}"]))
    assert (status, body["field"], body["error"]) == (400, "records.0.age", "records.0.age: Field required")
    assert int(headers[b"content-length"]) == len(json.dumps(body).encode())


class Client:
    """A client's side of one request: the body in chunks (what the guard has not read stays in `unread`)."""

    def __init__(self, chunks: list[bytes], *, stall: bool = False, keep_open: bool = False) -> None:
        self.unread: list[Message] = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
        ]
        self.stall = stall
        self.keep_open = keep_open  # after its body, wait (as uvicorn does until the client leaves)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.stall and len(self.unread) == 1:  # the last chunk never comes
            await asyncio.sleep(3600)
        if self.keep_open and not self.unread:
            await asyncio.sleep(3600)
        return self.unread.pop(0) if self.unread else {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])


def _run(guard: RequestGuard, scope: dict[str, Any], client: Client) -> Client:
    asyncio.run(guard(scope, client.receive, client.send))
    return client


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({**JSON, "Content-Length": "300"}, 413),
        ({"Content-Type": "text/plain", "Content-Length": "300"}, 415),
        ({**JSON, "Transfer-Encoding": "chunked"}, 413),
    ],
)
def test_a_refused_body_is_read_to_its_end_before_the_answer(headers: dict[str, str], status: int) -> None:
    """So that a client that writes its whole body before reading gets the answer, not a connection reset."""
    client = _run(_guard(App()), _scope(headers=headers), Client([b"x" * 100] * 3))
    assert client.status == status
    assert client.unread == []
    assert b"connection" not in client.headers  # read to the end: the connection may carry the next request


def test_a_body_past_the_drain_bound_is_not_read_and_the_connection_closes() -> None:
    app = App()
    client = _run(_guard(app, drain_bytes=200), _scope(headers={**JSON, "Content-Length": "300"}), Client([b"x" * 300]))
    assert (client.status, client.headers[b"connection"], len(client.unread)) == (413, b"close", 1)


def test_a_client_that_stalls_is_drained_only_until_the_time_bound() -> None:
    guard = RequestGuard(App(), max_body_bytes=100, max_concurrency=2, retry_after_s=7, drain_s=0.05)  # type: ignore[arg-type]
    client = _run(
        guard, _scope(headers={**JSON, "Content-Length": "300"}), Client([b"x" * 150, b"x" * 150], stall=True)
    )
    assert (client.status, client.headers[b"connection"]) == (413, b"close")


def test_a_client_waiting_for_100_continue_is_answered_without_reading() -> None:
    headers = {**JSON, "Content-Length": "300", "Expect": "100-continue"}
    client = _run(_guard(App()), _scope(headers=headers), Client([b"x" * 300]))
    assert (client.status, client.headers[b"connection"], len(client.unread)) == (413, b"close", 1)


def test_bodies_past_the_in_flight_budget_get_503_with_retry_after_and_the_budget_is_released() -> None:
    async def scenario() -> tuple[Client, Client, Client, int]:
        hold = asyncio.Event()
        guard = _guard(App(hold=hold), max_concurrency=10, max_inflight_body_bytes=150)
        held = Client([b"x" * 100])
        task = asyncio.create_task(guard(_scope(headers={**JSON, "Content-Length": "100"}), held.receive, held.send))
        await asyncio.sleep(0.01)
        refused = Client([b"x" * 60])
        await guard(_scope(headers={**JSON, "Content-Length": "60"}), refused.receive, refused.send)
        small = Client([b"x" * 40])
        small_task = asyncio.create_task(
            guard(_scope(headers={**JSON, "Content-Length": "40"}), small.receive, small.send)
        )
        await asyncio.sleep(0.01)
        hold.set()
        await asyncio.gather(task, small_task)
        return held, refused, small, guard.inflight_body_bytes

    held, refused, small, left = asyncio.run(scenario())
    assert (held.status, small.status) == (200, 200)
    assert (refused.status, refused.headers[b"retry-after"]) == (503, b"7")
    assert refused.unread == []
    assert left == 0


def test_a_chunked_body_past_the_in_flight_budget_gets_503_and_releases_what_it_held() -> None:
    guard = _guard(App(), max_body_bytes=1000, max_inflight_body_bytes=1024)
    assert guard.budget.reserve(guard.budget.open(), 900)  # another request in progress holds 900 bytes
    client = _run(guard, _scope(headers={**JSON, "Transfer-Encoding": "chunked"}), Client([b"x" * 100] * 3))
    assert (client.status, client.unread) == (503, [])
    assert guard.inflight_body_bytes == 900


def test_a_chunked_body_refused_on_its_last_message_is_answered_without_waiting_for_more() -> None:
    async def scenario() -> Client:
        client = Client([b"x" * 150], keep_open=True)  # the whole body in one message, then nothing more
        guard = _guard(App())
        await asyncio.wait_for(
            guard(_scope(headers={**JSON, "Transfer-Encoding": "chunked"}), client.receive, client.send), 1
        )
        return client

    client = asyncio.run(scenario())
    assert (client.status, client.unread) == (413, [])
    assert b"connection" not in client.headers


def test_the_bytes_of_a_chunked_body_cancelled_midway_are_released() -> None:
    """BentoML's timeout cancels the request while its body is still arriving: nothing may stay reserved."""

    async def scenario() -> tuple[int, int]:
        guard = _guard(App(), max_body_bytes=1000, max_inflight_body_bytes=1024)
        client = Client([b"x" * 300, b"x" * 300, b"x"], stall=True)
        task = asyncio.create_task(
            guard(_scope(headers={**JSON, "Transfer-Encoding": "chunked"}), client.receive, client.send)
        )
        await asyncio.sleep(0.05)
        held = guard.inflight_body_bytes
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return held, guard.inflight_body_bytes

    assert asyncio.run(scenario()) == (600, 0)


def test_a_body_slower_than_its_deadline_gets_408_and_the_connection_closes_without_waiting() -> None:
    guard = RequestGuard(App(), max_body_bytes=1000, max_concurrency=2, retry_after_s=7, body_timeout_s=0.05)  # type: ignore[arg-type]
    client = Client([b"x" * 10, b"x" * 10], stall=True)

    async def scenario() -> None:
        await asyncio.wait_for(guard(_scope(headers={**JSON, "Content-Length": "30"}), client.receive, client.send), 1)

    asyncio.run(scenario())
    assert (client.status, client.headers[b"connection"]) == (408, b"close")
    assert guard.inflight_body_bytes == 0


def test_a_body_still_arriving_holds_no_concurrency_slot() -> None:
    async def scenario() -> tuple[int, int]:
        guard = _guard(App(), max_concurrency=1)
        slow = Client([b"{"], stall=True)
        task = asyncio.create_task(guard(_scope(headers={**JSON, "Content-Length": "2"}), slow.receive, slow.send))
        await asyncio.sleep(0.01)
        status, _, _ = await _call(guard, _scope(headers={**JSON, "Content-Length": "2"}), [b"{}"])
        active = guard.active
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return status, active

    assert asyncio.run(scenario()) == (200, 0)


@pytest.mark.parametrize("given", ["id\n", "id\r\n", "", "x" * 65, "no spaces"])
def test_a_request_id_that_is_not_wholly_safe_characters_gets_400(given: str) -> None:
    headers = {**JSON, "X-Request-ID": given}
    status, _, body = asyncio.run(_call(_guard(App()), _scope(headers=headers), [b"{}"]))
    assert (status, body["field"]) == (400, "X-Request-ID")


class Refuses:
    """A body check that finds every large body suspicious and names records.0, from a thread."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def suspicious(self, body: bytes) -> bool:
        return True

    def problem(self, body: bytes) -> tuple[str, str] | None:
        import threading

        self.threads.append(threading.current_thread().name)
        return ("records.0", "too many fields")


def test_a_large_body_of_an_impossible_shape_is_refused_from_a_thread_before_the_app() -> None:
    app, check = App(), Refuses()
    guard = RequestGuard(app, max_body_bytes=2**20, max_concurrency=2, retry_after_s=7, body_checks={"/predict": check})  # type: ignore[arg-type]
    body = b"x" * (2**17)
    status, _, answer = asyncio.run(_call(guard, _scope(headers={**JSON, "Content-Length": str(len(body))}), [body]))
    assert (status, answer) == (400, {"error": "records.0: too many fields", "field": "records.0"})
    assert app.seen == []
    assert check.threads
    assert check.threads[0] != "MainThread"


def test_each_refusal_is_logged_once_without_the_clients_values(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger=PACKAGE)
    asyncio.run(_call(_guard(App()), _scope(headers={"Content-Type": "text/4111-1111-1111-1111"}), [b"{}"]))
    (record,) = caplog.records
    assert record.getMessage() == "refused POST /predict 415 Content-Type (not JSON)"
