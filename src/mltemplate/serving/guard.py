"""ASGI middleware in front of the prediction API: JSON-only POST bodies (415), a body size cap (413), a per-worker
concurrency cap (429), a per-worker budget of body bytes in flight (503), Retry-After on every 429/503, and a
`field` in every 400. BentoML has no body limit, its own max_concurrency answers 429 without Retry-After, and its
400s list pydantic errors without a headline.

Every refusal is readable by clients that write the whole body before reading (Python's urllib, for one): the
unread body is drained (read and dropped, up to `drain_bytes` and `drain_s`) before the answer, because closing
a socket with unread bytes in it makes the kernel send a reset, which destroys the answer in the client's buffer.

It also checks the X-Request-ID of every POST that scores (/predict, /invocations, a V2 infer), the client's own
correlation id (1-64 safe characters, else 400): the prediction log records it beside the id the service makes
(ids.py), which the answer carries."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # as mltemplate.monitoring.feedback.REQUEST_ID
ID_PATHS = frozenset({"/predict", "/invocations"})
V2_INFER = re.compile(r"/v2/models/[^/]+(?:/versions/[^/]+)?/infer")
"""The Open Inference Protocol's inference paths (v2.py): scored, so given an id; tritonclient sends no Content-Type."""
PROBES = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
JSON_TYPES = frozenset({"application/json"})
MEDIA_TYPES = {"/invocations": frozenset({"application/json", "text/csv"})}
"""Paths that take more than JSON: MLflow's scoring protocol takes CSV too (invocations.py)."""
CLOSE = (b"connection", b"close")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _declared_length(scope: Scope) -> int | None:
    length = _header(scope, b"content-length")
    return int(length) if length is not None and length.strip().isdigit() else None


class Refusal(Exception):
    """An answer the guard gives instead of the app: status, JSON body, extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(body.get("error", ""))
        self.status = status
        self.body = body
        self.headers = headers or []
        self.body_read = False
        """True when the request body was already read to its end (nothing left to drain)."""


class RequestGuard:
    """Checks each request before BentoML parses it; probes and GETs of docs pass untouched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_concurrency: int,
        retry_after_s: int,
        max_inflight_body_bytes: int | None = None,
        drain_bytes: int | None = None,
        drain_s: float = 10.0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_concurrency = max_concurrency
        self.retry_after = (b"retry-after", str(retry_after_s).encode())
        self.max_inflight_body_bytes = max_inflight_body_bytes or max_body_bytes * max_concurrency
        self.drain_bytes = 4 * max_body_bytes if drain_bytes is None else drain_bytes
        self.drain_s = drain_s
        self.active = 0
        self.inflight_body_bytes = 0
        """Body bytes of admitted requests (declared, or read so far when chunked): what they may hold in memory."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        reserved = 0
        try:
            if scope["method"] == "POST" and (scope["path"] in ID_PATHS or V2_INFER.fullmatch(scope["path"])):
                self._check_request_id(scope)
            if scope["method"] == "POST":
                self._check_post(scope)
            if self.active >= self.max_concurrency:
                raise Refusal(
                    429,
                    {"error": f"too many requests in progress (limit {self.max_concurrency} per worker); retry later"},
                    [self.retry_after],
                )
            reserved = self._reserve(_declared_length(scope) or 0)
            self.active += 1
            try:
                if scope["method"] == "POST" and _header(scope, b"content-length") is None:
                    buffered, extra = await self._read_limited(receive)
                    reserved += extra
                    receive = _replay(buffered, receive)
                await self.app(scope, receive, _ValidationErrorNamer(self._with_retry_after(send)))
            finally:
                self.active -= 1
        except Refusal as refusal:
            await self._refuse(scope, receive, send, refusal)
        finally:
            self.inflight_body_bytes -= reserved

    @staticmethod
    def _check_request_id(scope: Scope) -> None:
        """Refuse a client X-Request-ID that is not 1-64 safe characters (it goes into the log as text)."""
        given = _header(scope, REQUEST_ID_HEADER)
        if given is not None and not REQUEST_ID.match(given):
            error = f"X-Request-ID {given[:80]!r} is not 1-64 characters of A-Za-z0-9._:-"
            raise Refusal(400, {"error": error, "field": "X-Request-ID"})

    def _reserve(self, size: int) -> int:
        if size and self.inflight_body_bytes + size > self.max_inflight_body_bytes:
            raise Refusal(
                503,
                {
                    "error": f"request bodies in progress would pass {self.max_inflight_body_bytes} bytes "
                    "per worker (the memory budget); retry later"
                },
                [self.retry_after],
            )
        self.inflight_body_bytes += size
        return size

    def _too_large(self, size: int | None) -> Refusal:
        given = f"{size} bytes" if size is not None else "more"
        return Refusal(
            413, {"error": f"request body is {given}; the limit is {self.max_body_bytes} bytes", "field": "body"}
        )

    def _check_post(self, scope: Scope) -> None:
        content_type = _header(scope, b"content-type")
        media_type = (content_type or "").split(";")[0].strip().lower()
        accepted = MEDIA_TYPES.get(scope["path"], JSON_TYPES)
        if media_type not in accepted and not (content_type is None and V2_INFER.fullmatch(scope["path"])):
            raise Refusal(
                415,
                {
                    "error": f"Content-Type {content_type!r} is not supported; send {' or '.join(sorted(accepted))}",
                    "field": "Content-Type",
                },
            )
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise Refusal(
                    400, {"error": f"Content-Length {length!r} is not a number of bytes", "field": "Content-Length"}
                )
            if int(length) > self.max_body_bytes:
                raise self._too_large(int(length))

    async def _read_limited(self, receive: Receive) -> tuple[bytes, int]:
        """A chunked body and the bytes reserved for it; Refusal (413, or 503 past the budget) as soon as it passes
        a limit. The caller releases what was reserved, refused or not."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            more = bool(message.get("more_body", False))
            try:
                if size + len(chunk) > self.max_body_bytes:
                    raise self._too_large(None)
                size += self._reserve(len(chunk))
            except Refusal as refusal:
                self.inflight_body_bytes -= size
                refusal.body_read = not more  # the last message: waiting for more would wait forever
                raise
            chunks.append(chunk)
            if not more:
                break
        return b"".join(chunks), size

    async def _drain(self, scope: Scope, receive: Receive) -> bool:
        """Read and drop the rest of the body, up to drain_bytes and drain_s; True when it was read to its end."""
        if (_header(scope, b"expect") or "").lower() == "100-continue":
            return False  # the client waits for our go-ahead before sending: no body comes, and none is wanted
        declared = _declared_length(scope)
        if declared is not None and declared > self.drain_bytes:
            return False
        if declared == 0 or (declared is None and _header(scope, b"transfer-encoding") is None):
            return True
        drained = 0
        try:
            async with asyncio.timeout(self.drain_s):
                while drained <= self.drain_bytes:
                    message = await receive()
                    if message["type"] != "http.request":
                        return False
                    drained += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return True
        except TimeoutError:
            pass
        return False

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        payload = json.dumps(refusal.body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if not (refusal.body_read or await self._drain(scope, receive)):
            # The body was not read to its end: the connection cannot carry another request.
            headers.append(CLOSE)
        await send({"type": "http.response.start", "status": refusal.status, "headers": [*headers, *refusal.headers]})
        await send({"type": "http.response.body", "body": payload})

    def _with_retry_after(self, send: Send) -> Send:
        """Retry-After on every 429/503."""

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if message["status"] in (429, 503) and not any(key.lower() == b"retry-after" for key, _ in headers):
                    headers.append(self.retry_after)
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
