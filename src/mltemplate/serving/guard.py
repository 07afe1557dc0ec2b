"""ASGI middleware in front of the prediction API: JSON-only POST bodies (415), a body size cap (413), a per-worker
concurrency cap (429), Retry-After on every 429/503, and a `field` in every 400. BentoML has no body limit, its
own max_concurrency answers 429 without Retry-After, and its 400s list pydantic errors without a headline.
It also gives every POST /predict a request id: the client's X-Request-ID when valid, else a new one, passed on in
the request headers and sent back in the response's X-Request-ID."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # as mltemplate.monitoring.feedback.REQUEST_ID
ID_PATHS = frozenset({"/predict"})
PROBES = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
JSON_TYPES = frozenset({"application/json"})


async def _respond(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class RequestGuard:
    """Checks each request before BentoML parses it; probes and GETs of docs pass untouched."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_concurrency: int, retry_after_s: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_concurrency = max_concurrency
        self.retry_after = (b"retry-after", str(retry_after_s).encode())
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        request_id: bytes | None = None
        if scope["method"] == "POST" and scope["path"] in ID_PATHS:
            given = _header(scope, REQUEST_ID_HEADER)
            if given is not None and not REQUEST_ID.match(given):
                error = f"X-Request-ID {given[:80]!r} is not 1-64 characters of A-Za-z0-9._:-"
                await _respond(send, 400, {"error": error, "field": "X-Request-ID"}, [])
                return
            request_id = (given or uuid.uuid4().hex).encode()
            if given is None:
                scope["headers"] = [*scope.get("headers", []), (REQUEST_ID_HEADER, request_id)]
        if scope["method"] == "POST":
            refusal = self._refuse_post(scope)
            if refusal is not None:
                status, body = refusal
                await _respond(send, status, body, [])
                return
        if self.active >= self.max_concurrency:
            await _respond(
                send,
                429,
                {"error": f"too many requests in progress (limit {self.max_concurrency} per worker); retry later"},
                [self.retry_after],
            )
            return
        self.active += 1
        try:
            if scope["method"] == "POST" and _header(scope, b"content-length") is None:
                buffered = await self._read_limited(receive)
                if buffered is None:
                    await _respond(send, 413, self._too_large(None), [])
                    return
                receive = _replay(buffered, receive)
            await self.app(scope, receive, _ValidationErrorNamer(self._with_headers(send, request_id)))
        finally:
            self.active -= 1

    def _too_large(self, size: int | None) -> dict[str, Any]:
        given = f"{size} bytes" if size is not None else "more"
        return {"error": f"request body is {given}; the limit is {self.max_body_bytes} bytes", "field": "body"}

    def _refuse_post(self, scope: Scope) -> tuple[int, dict[str, Any]] | None:
        content_type = _header(scope, b"content-type")
        media_type = (content_type or "").split(";")[0].strip().lower()
        if media_type not in JSON_TYPES:
            return 415, {
                "error": f"Content-Type {content_type!r} is not supported; send application/json",
                "field": "Content-Type",
            }
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                return 400, {"error": f"Content-Length {length!r} is not a number of bytes", "field": "Content-Length"}
            if int(length) > self.max_body_bytes:
                return 413, self._too_large(int(length))
        return None

    async def _read_limited(self, receive: Receive) -> bytes | None:
        """A chunked body, or None as soon as it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _with_headers(self, send: Send, request_id: bytes | None) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if message["status"] in (429, 503) and not any(key.lower() == b"retry-after" for key, _ in headers):
                    headers.append(self.retry_after)
                if request_id is not None:
                    headers.append((REQUEST_ID_HEADER, request_id))
                message["headers"] = headers
            await send(message)

        return sending


def _replay(body: bytes, original: Receive) -> Receive:
    """The buffered body once, then the client's own messages (a real disconnect, when it comes)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _field(loc: list[Any]) -> str:
    """`records.0.mean_radius` for a pydantic error location; `body` when the whole body is at fault."""
    return ".".join(str(part) for part in loc) or "body"


def name_validation_error(body: dict[str, Any]) -> dict[str, Any]:
    """BentoML's 400 body ({"error": "1 validation error for ...", "detail": [pydantic errors]}) with the first
    error's field and message up front: {"error": "records.0.x: Input should be ...", "field": "records.0.x", ...}."""
    detail = body.get("detail")
    if not isinstance(detail, list) or not detail or not isinstance(detail[0], dict):
        return body
    first = detail[0]
    field = _field(list(first.get("loc", [])))
    more = f" (+{len(detail) - 1} more)" if len(detail) > 1 else ""
    return {"error": f"{field}: {first.get('msg', 'invalid')}{more}", "field": field, "detail": detail}


class _ValidationErrorNamer:
    """Wraps `send`: a 400 JSON response is held whole, renamed by name_validation_error, then sent."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 400:
            self.start = message
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.chunks)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            body = json.dumps(name_validation_error(parsed)).encode()
        headers = [(k, v) for k, v in self.start.get("headers", []) if k.lower() != b"content-length"]
        await self.send({**self.start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await self.send({"type": "http.response.body", "body": body})
