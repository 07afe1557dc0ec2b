"""The request guard's per-worker limits: the body budget (bytes that requests in progress may hold, reserved per
request on a ticket and all given back when the ticket closes, however the request ends: answered, refused, timed
out, cancelled, disconnected), and reading a whole body under a deadline and within the budget.

The deadlines share one timer per worker, which looks at the bodies being read every SWEEP_S and cuts off those
past their deadline (asyncio.timeout would arm and cancel a timer per request: about 10 us each, a few percent of
a worker's throughput)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
SWEEP_S = 0.5
"""How often the deadlines of bodies being read are checked: a slow body is cut off at most this late."""


class Ticket:
    """What one request holds of the budget, and since when; while its body is read, the task reading it and when
    it must be done (time.monotonic())."""

    __slots__ = ("deadline", "expired", "reader", "reserved", "started")

    def __init__(self, started: float) -> None:
        self.reserved = 0
        self.started = started
        self.reader: asyncio.Task[Any] | None = None
        self.deadline = 0.0
        self.expired = False


class BodyBudget:
    """Body bytes in progress in one worker, at most `limit`. A request opens a ticket, reserves on it, and closes it
    in a `finally`: what it reserved is released whatever happened in between."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reserved = 0
        self.tickets: set[Ticket] = set()
        self.sweeping: asyncio.AbstractEventLoop | None = None

    def watch(self, ticket: Ticket, deadline_s: float) -> None:
        """Cut the current task's body reading off (cancel it, marked expired) once `deadline_s` have passed."""
        ticket.reader = asyncio.current_task()
        ticket.deadline = time.monotonic() + deadline_s
        loop = asyncio.get_running_loop()
        if self.sweeping is not loop:
            self.sweeping = loop
            loop.call_later(SWEEP_S, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        for ticket in self.tickets:
            if ticket.reader is not None and not ticket.expired and now >= ticket.deadline:
                ticket.expired = True
                ticket.reader.cancel()
        loop.call_later(SWEEP_S, self._sweep, loop)

    def open(self) -> Ticket:
        ticket = Ticket(time.monotonic())
        self.tickets.add(ticket)
        return ticket

    def reserve(self, ticket: Ticket, size: int) -> bool:
        """Reserve `size` more bytes for the ticket's request; False (nothing reserved) when the budget has no room."""
        if size and self.reserved + size > self.limit:
            return False
        self.reserved += size
        ticket.reserved += size
        return True

    def close(self, ticket: Ticket) -> None:
        self.reserved -= ticket.reserved
        ticket.reserved = 0
        self.tickets.discard(ticket)

    def unaccounted(self) -> int:
        """Bytes reserved that no open ticket holds: a leak, which nothing will ever give back (always 0 unless a
        request escaped its `finally`)."""
        return self.reserved - sum(ticket.reserved for ticket in self.tickets)

    def held_longer_than(self, seconds: float) -> int:
        """Bytes held by requests older than `seconds`."""
        since = time.monotonic() - seconds
        return sum(ticket.reserved for ticket in self.tickets if ticket.started < since)


class BodyRefused(Exception):
    """Why a body was not read: `kind` is one of KINDS; `read_to_end` when nothing of it is left unread."""

    KINDS = ("too_large", "over_budget", "too_slow", "gone")

    def __init__(self, kind: str, *, read_to_end: bool) -> None:
        super().__init__(kind)
        self.kind = kind
        self.read_to_end = read_to_end


async def read_body(
    receive: Receive,
    *,
    declared: int | None,
    max_bytes: int,
    budget: BodyBudget,
    ticket: Ticket,
    deadline_s: float,
) -> bytes:
    """The whole body, within `deadline_s` of the call and `max_bytes`. A declared length is reserved before a byte
    is read, a chunked body as its chunks arrive; BodyRefused says which limit it passed, or that the client left.
    What was reserved stays on the ticket for the caller to release."""
    if declared is not None and not budget.reserve(ticket, declared):
        raise BodyRefused("over_budget", read_to_end=declared == 0)
    chunks: list[bytes] = []
    size = 0
    budget.watch(ticket, deadline_s)
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise BodyRefused("gone", read_to_end=True)
            chunk = message.get("body", b"")
            more = bool(message.get("more_body", False))
            if chunk:
                size += len(chunk)
                if size > max_bytes:
                    raise BodyRefused("too_large", read_to_end=not more)
                if declared is None and not budget.reserve(ticket, len(chunk)):
                    raise BodyRefused("over_budget", read_to_end=not more)
                chunks.append(chunk)
            if not more:
                break
    except asyncio.CancelledError:
        reader = ticket.reader
        # Our deadline, and no one else's cancellation (BentoML's timeout) with it: the body was too slow.
        if ticket.expired and reader is not None and reader.cancelling() == 1:
            reader.uncancel()
            raise BodyRefused("too_slow", read_to_end=False) from None
        raise
    finally:
        ticket.reader = None
    # One chunk (a small body) is passed on as it is: join would only copy it.
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
