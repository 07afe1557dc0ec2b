"""ASGI middleware in front of the prediction API: JSON-only POST bodies (415), a body size cap (413), a deadline for
the body (408), a per-worker budget of body bytes in flight (503, limits.py), a per-worker concurrency cap (429),
Retry-After on every 429/503, a `field` in every 400, and one log line per refused request (refusals.py). BentoML
has no body limit, its own max_concurrency answers 429 without Retry-After, and its 400s list pydantic errors
without a headline.

A body is read whole, under its deadline, before the request takes a concurrency slot: a client that trickles its
body holds no slot, only the bytes it has sent (or declared), and those go back when the request ends, however it
ends. A large body whose shape no valid request has is refused from its bytes, in a thread (shape.py).

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
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Protocol

from mltemplate.serving.limits import BodyBudget, BodyRefused, read_body
from mltemplate.serving.refusals import RefusalLog
from mltemplate.serving.replies import REQUEST_ID_HEADER, Reply

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # as mltemplate.monitoring.feedback.REQUEST_ID; fullmatch
ID_PATHS = frozenset({"/predict", "/invocations"})
V2_INFER = re.compile(r"/v2/models/[^/]+(?:/versions/[^/]+)?/infer")
"""The Open Inference Protocol's inference paths (v2.py): scored, so their X-Request-ID is checked; tritonclient sends
no Content-Type."""
PROBES = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
JSON_TYPES = frozenset({"application/json"})
MEDIA_TYPES = {"/invocations": frozenset({"application/json", "text/csv"})}
"""Paths that take more than JSON: MLflow's scoring protocol takes CSV too (invocations.py)."""
CLOSE = (b"connection", b"close")
CHECKED_BODY_BYTES = 64 * 2**10
"""Bodies up to this size skip the shape check: even their worst case costs little to parse."""


class BodyCheck(Protocol):
    """Why a body cannot be a request to its path (shape.py), found without parsing it."""

    def suspicious(self, body: bytes) -> bool:
        """Cheap, on the event loop: whether the thorough check is worth running."""
        ...

    def problem(self, body: bytes) -> tuple[str, str] | None:
        """Thorough, in a thread: (field, reason), or None."""
        ...


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

    def __init__(
        self,
        status: int,
        body: dict[str, Any],
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        reason: str = "refused",
    ) -> None:
        super().__init__(body.get("error", ""))
        self.status = status
        self.body = body
        self.headers = headers or []
        self.reason = reason
        """What the log says (never the client's values)."""
        self.body_read = False
        """True when the request body was already read to its end (nothing left to drain)."""
        self.drain = True
        """False when the rest of the body must not be waited for (it is too slow): the connection closes."""


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
        budget: BodyBudget | None = None,
        drain_bytes: int | None = None,
        drain_s: float = 10.0,
        body_timeout_s: float | None = None,
        body_checks: Mapping[str, BodyCheck] | None = None,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_concurrency = max_concurrency
        self.retry_after = (b"retry-after", str(retry_after_s).encode())
        self.budget = budget or BodyBudget(max_inflight_body_bytes or max_body_bytes * max_concurrency)
        self.drain_bytes = 4 * max_body_bytes if drain_bytes is None else drain_bytes
        self.drain_s = drain_s
        self.body_timeout_s = drain_s if body_timeout_s is None else body_timeout_s
        self.body_checks = dict(body_checks or {})
        self.refusals = refusals or RefusalLog()
        self.active = 0
        """Requests past their body, in the app: what the concurrency cap counts."""

    @property
    def inflight_body_bytes(self) -> int:
        """Body bytes of requests in progress (declared, or read so far when chunked): what they may hold."""
        return self.budget.reserved

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        ticket = self.budget.open()
        try:  # the ticket's bytes go back however this ends, a cancellation (BentoML's timeout) included
            try:
                if scope["method"] == "POST":
                    if scope["path"] in ID_PATHS or V2_INFER.fullmatch(scope["path"]):
                        self._check_request_id(scope)
                    self._check_post(scope)
                    try:
                        body = await read_body(
                            receive,
                            declared=_declared_length(scope),
                            max_bytes=self.max_body_bytes,
                            budget=self.budget,
                            ticket=ticket,
                            deadline_s=self.body_timeout_s,
                        )
                    except BodyRefused as refused:
                        if refused.kind == "gone":
                            return  # the client left: nobody to answer
                        raise self._body_refusal(refused) from None
                    await self._check_body(scope["path"], body)
                    receive = _replay(body, receive)
                if self.active >= self.max_concurrency:
                    error = f"too many requests in progress (limit {self.max_concurrency} per worker); retry later"
                    refusal = Refusal(429, {"error": error}, [self.retry_after], reason="concurrency limit")
                    refusal.body_read = True
                    raise refusal
            except Refusal as refusal:
                await self._refuse(scope, receive, send, refusal)
                return
            self.active += 1
            try:
                # No request id here: the service issues its own for each answer and sends it back (ids.py).
                reply = Reply(send, scope, None, retry_after=self.retry_after, refusals=self.refusals)
                await self.app(scope, receive, reply)
            finally:
                self.active -= 1
        finally:
            self.budget.close(ticket)

    @staticmethod
    def _check_request_id(scope: Scope) -> None:
        """Refuse a client X-Request-ID that is not 1-64 safe characters (it goes into the log as text)."""
        given = _header(scope, REQUEST_ID_HEADER)
        if given is not None and not REQUEST_ID.fullmatch(given):
            error = f"X-Request-ID {given[:80]!r} is not 1-64 characters of A-Za-z0-9._:-"
            raise Refusal(400, {"error": error, "field": "X-Request-ID"}, reason="not a request id")

    def _body_refusal(self, refused: BodyRefused) -> Refusal:
        if refused.kind == "too_large":
            refusal = self._too_large(None)
        elif refused.kind == "too_slow":
            error = f"the request body did not arrive within {self.body_timeout_s:g} s"
            refusal = Refusal(408, {"error": error, "field": "body"}, reason="body too slow")
            refusal.drain = False
        else:
            refusal = Refusal(
                503,
                {
                    "error": f"request bodies in progress would pass {self.budget.limit} bytes "
                    "per worker (the memory budget); retry later"
                },
                [self.retry_after],
                reason="body budget",
            )
        refusal.body_read = refused.read_to_end
        return refusal

    async def _check_body(self, path: str, body: bytes) -> None:
        check = self.body_checks.get(path)
        if check is None or len(body) <= CHECKED_BODY_BYTES or not check.suspicious(body):
            return
        found = await asyncio.to_thread(check.problem, body)  # numpy over the body: off the event loop
        if found is not None:
            field, reason = found
            refusal = Refusal(400, {"error": f"{field}: {reason}", "field": field}, reason="shape")
            refusal.body_read = True
            raise refusal

    def _too_large(self, size: int | None) -> Refusal:
        given = f"{size} bytes" if size is not None else "more"
        return Refusal(
            413,
            {"error": f"request body is {given}; the limit is {self.max_body_bytes} bytes", "field": "body"},
            reason="body too large",
        )

    def _check_post(self, scope: Scope) -> None:
        content_type = _header(scope, b"content-type")
        media_type = (content_type or "").split(";")[0].strip().lower()
        accepted = MEDIA_TYPES.get(scope["path"], JSON_TYPES)
        if media_type not in accepted and not (content_type is None and V2_INFER.fullmatch(scope["path"])):
            raise Refusal(
                415,
                {
                    "error": f"Content-Type {content_type[:80] if content_type else None!r} is not supported; "
                    f"send {' or '.join(sorted(accepted))}",
                    "field": "Content-Type",
                },
                reason="not JSON",
            )
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise Refusal(
                    400,
                    {"error": f"Content-Length {length[:80]!r} is not a number of bytes", "field": "Content-Length"},
                    reason="bad Content-Length",
                )
            if int(length) > self.max_body_bytes:
                raise self._too_large(int(length))

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
        self.refusals.refused(
            scope["method"],
            scope["path"],
            refusal.status,
            field=refusal.body.get("field"),
            reason=refusal.reason,
            message=str(refusal.body.get("error", "")),
        )
        read = refusal.body_read or (refusal.drain and await self._drain(scope, receive))
        if not read:
            # The body was not read to its end: the connection cannot carry another request.
            headers.append(CLOSE)
        await send({"type": "http.response.start", "status": refusal.status, "headers": [*headers, *refusal.headers]})
        await send({"type": "http.response.body", "body": payload})


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
