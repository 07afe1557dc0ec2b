"""What an admitted request's answer gets on its way out of the guard: Retry-After on 429/503, the request id, a 400
renamed to put the field at fault up front (and listing at most MAX_ERRORS errors), and the refusal's log line."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mltemplate.serving.payloads import MAX_ERRORS, TOO_MANY_ERRORS
from mltemplate.serving.refusals import RefusalLog

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
MAX_LISTED_BODY_BYTES = 2**20
"""A 400 body larger than this is passed on as it is, never parsed here."""


def _field(loc: list[Any]) -> str:
    """`records.0.mean_radius` for a pydantic error location; `body` when the whole body is at fault."""
    return ".".join(str(part)[:80] for part in loc) or "body"


def name_validation_error(body: dict[str, Any]) -> dict[str, Any]:
    """BentoML's 400 body ({"error": "1 validation error for ...", "detail": [pydantic errors]}) with the first
    error's field and message up front: {"error": "records.0.x: Input should be ...", "field": "records.0.x", ...}.
    At most MAX_ERRORS errors are listed (payloads.bounded has counted the others)."""
    detail = body.get("detail")
    if not isinstance(detail, list) or not detail or not isinstance(detail[0], dict):
        return body
    first = detail[0]
    field = _field(list(first.get("loc", [])))
    uncounted = [d for d in detail if isinstance(d, dict) and d.get("type") == TOO_MANY_ERRORS]
    listed = [d for d in detail if d not in uncounted][:MAX_ERRORS]
    more = f"+{len(listed) - 1} more" if len(listed) > 1 else ""
    if uncounted:
        more = f"{more}; {uncounted[0].get('msg', '')}" if more else str(uncounted[0].get("msg", ""))
    headline = f"{field}: {first.get('msg', 'invalid')}" + (f" ({more})" if more else "")
    return {"error": headline, "field": field, "detail": listed + uncounted[:1]}


class Reply:
    """Wraps `send` for one admitted request: Retry-After on every 429/503, the request id on every answer to a
    request that has one, a 400 JSON body held whole and renamed by name_validation_error, and the log line of an
    answer that refuses (4xx or 503)."""

    def __init__(
        self,
        send: Send,
        scope: Scope,
        request_id: bytes | None,
        *,
        retry_after: tuple[bytes, bytes],
        refusals: RefusalLog,
    ) -> None:
        self.send = send
        self.scope = scope
        self.request_id = request_id
        self.retry_after = retry_after
        self.refusals = refusals
        self.held: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            message = self._headers(message)
            if message["status"] == 400:
                self.held = message
                return
            if message["status"] >= 400 and message["status"] != 500:
                self._log(message["status"], None, "refused")
        elif self.held is not None and message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send_renamed()
            return
        await self.send(message)

    def _headers(self, message: Message) -> Message:
        headers = list(message.get("headers", []))
        if message["status"] in (429, 503) and not any(key.lower() == b"retry-after" for key, _ in headers):
            headers.append(self.retry_after)
        if self.request_id is not None:
            headers.append((REQUEST_ID_HEADER, self.request_id))
        return {**message, "headers": headers}

    async def _send_renamed(self) -> None:
        held = self.held or {}
        body = b"".join(self.chunks)
        parsed = json.loads(body) if len(body) <= MAX_LISTED_BODY_BYTES and body[:1] == b"{" else None
        field, reason, message = None, "invalid", ""
        if isinstance(parsed, dict):
            renamed = name_validation_error(parsed)
            body = json.dumps(renamed).encode()
            field, message = renamed.get("field"), str(renamed.get("error", ""))
            detail = renamed.get("detail")
            if isinstance(detail, list) and detail and isinstance(detail[0], dict):
                reason = str(detail[0].get("type", reason))
        self._log(400, field, reason, message)
        headers = [(k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"]
        await self.send({**held, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await self.send({"type": "http.response.body", "body": body})

    def _log(self, status: int, field: str | None, reason: str, message: str = "") -> None:
        scope = self.scope
        self.refusals.refused(scope["method"], scope["path"], status, field=field, reason=reason, message=message)
