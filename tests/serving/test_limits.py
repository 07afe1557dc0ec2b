"""The body budget gives back every byte a request reserved, however it ends; a body is read whole under its
deadline and within its limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mltemplate.serving.limits import BodyBudget, BodyRefused, read_body


def _client(chunks: list[bytes], *, stall: bool = False) -> Any:
    """Sends `chunks`; with `stall`, the body's end never comes."""
    queue = [
        {"type": "http.request", "body": c, "more_body": stall or i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        if not queue:
            if stall:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}
        return queue.pop(0)

    return receive


async def _read(budget: BodyBudget, chunks: list[bytes], *, stall: bool = False, **options: Any) -> bytes:
    ticket = budget.open()
    try:
        settings = {"declared": None, "max_bytes": 100, "deadline_s": 5.0, **options}
        return await read_body(_client(chunks, stall=stall), budget=budget, ticket=ticket, **settings)
    finally:
        budget.close(ticket)


def test_a_chunked_body_is_joined_and_its_bytes_released() -> None:
    budget = BodyBudget(100)
    assert asyncio.run(_read(budget, [b"ab", b"cd"])) == b"abcd"
    assert (budget.reserved, budget.tickets) == (0, set())


@pytest.mark.parametrize(
    ("chunks", "options", "kind"),
    [
        ([b"x" * 60, b"x" * 60], {}, "too_large"),
        ([b"x" * 60, b"x" * 60], {"max_bytes": 1000}, "over_budget"),
        ([b"x" * 10], {"declared": 200, "max_bytes": 1000}, "over_budget"),
    ],
)
def test_a_body_past_a_limit_is_refused_and_its_bytes_released(
    chunks: list[bytes], options: dict[str, Any], kind: str
) -> None:
    budget = BodyBudget(100)
    with pytest.raises(BodyRefused) as refused:
        asyncio.run(_read(budget, chunks, **options))
    assert refused.value.kind == kind
    assert budget.reserved == 0


def test_a_body_that_does_not_arrive_in_time_is_too_slow() -> None:
    budget = BodyBudget(100)
    with pytest.raises(BodyRefused, match="too_slow"):
        asyncio.run(_read(budget, [b"x" * 10], deadline_s=0.05, stall=True))
    assert budget.reserved == 0


def test_bytes_are_released_when_the_request_is_cancelled_midway() -> None:
    """As BentoML's timeout does: it cancels the request's task while the body is still arriving."""

    async def scenario(budget: BodyBudget) -> int:
        receive = _client([b"x" * 30, b"x" * 30, b"x"], stall=True)
        ticket = budget.open()

        async def request() -> None:
            try:
                await read_body(receive, declared=None, max_bytes=100, budget=budget, ticket=ticket, deadline_s=60)
            finally:
                budget.close(ticket)

        task = asyncio.create_task(request())
        await asyncio.sleep(0.05)
        held = budget.reserved
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return held

    budget = BodyBudget(100)
    assert asyncio.run(scenario(budget)) == 61
    assert (budget.reserved, budget.unaccounted()) == (0, 0)


def test_bytes_held_by_old_requests_and_leaks_are_told_apart() -> None:
    budget = BodyBudget(100)
    ticket = budget.open()
    budget.reserve(ticket, 40)
    ticket.started -= 100
    assert (budget.held_longer_than(50), budget.unaccounted()) == (40, 0)
    budget.reserved += 7  # what a request that escaped its `finally` would leave
    assert budget.unaccounted() == 7
