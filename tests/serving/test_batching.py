"""The batcher merges overlapping calls into one model call and hands each caller its own rows back."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from mltemplate.serving.batching import Batcher, Overloaded, Rows


class Model:
    """Returns each row's `x` and records the size of every call; `gate` holds the first call until set."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, rows: Rows) -> np.ndarray:
        self.gate.wait(5)
        self.calls.append(len(rows))
        if any(row["x"] < 0 for row in rows):  # stands in for values the real model cannot score
            raise ValueError(f"cannot score {[row['x'] for row in rows if row['x'] < 0]}")
        return np.array([[row["x"]] for row in rows], dtype=float)


def _rows(*xs: int) -> Rows:
    return [{"x": x} for x in xs]


async def _overlapping(batcher: Batcher, model: Model, requests: list[Rows]) -> list[np.ndarray]:
    """The first request occupies the model; the rest arrive while it runs."""
    model.gate.clear()
    first = asyncio.create_task(batcher(requests[0]))
    await asyncio.sleep(0.02)
    rest = [asyncio.create_task(batcher(rows)) for rows in requests[1:]]
    await asyncio.sleep(0.02)
    model.gate.set()
    return await asyncio.gather(first, *rest)


def test_a_lone_call_is_answered_at_once() -> None:
    model = Model()
    result = asyncio.run(Batcher(model, max_batch_rows=8, max_waiting_rows=8)(_rows(1, 2)))
    assert result.ravel().tolist() == [1, 2]
    assert model.calls == [2]


def test_calls_that_arrive_during_a_model_call_share_the_next_one() -> None:
    model = Model()
    batcher = Batcher(model, max_batch_rows=100, max_waiting_rows=100)
    results = asyncio.run(_overlapping(batcher, model, [_rows(0), _rows(1, 2), _rows(3), _rows(4, 5, 6)]))
    assert [r.ravel().tolist() for r in results] == [[0], [1, 2], [3], [4, 5, 6]]
    assert model.calls == [1, 6]


def test_a_model_call_holds_at_most_max_batch_rows_but_always_one_request() -> None:
    model = Model()
    batcher = Batcher(model, max_batch_rows=3, max_waiting_rows=100)
    results = asyncio.run(_overlapping(batcher, model, [_rows(0), _rows(1, 2), _rows(3, 4), _rows(5, 6, 7, 8)]))
    assert [r.ravel().tolist() for r in results] == [[0], [1, 2], [3, 4], [5, 6, 7, 8]]
    assert model.calls == [1, 2, 2, 4]


def test_too_many_waiting_rows_is_overloaded() -> None:
    model = Model()
    batcher = Batcher(model, max_batch_rows=100, max_waiting_rows=3)
    with pytest.raises(Overloaded, match="limit 3"):
        asyncio.run(_overlapping(batcher, model, [_rows(0, 1), _rows(2, 3), _rows(4, 5)]))


def test_a_model_that_fails_on_every_request_fails_every_caller() -> None:
    def broken(rows: Rows) -> np.ndarray:
        raise ValueError("broken model")

    async def scenario() -> list[BaseException | np.ndarray]:
        batcher = Batcher(broken, max_batch_rows=8, max_waiting_rows=8)
        return await asyncio.gather(batcher(_rows(1)), batcher(_rows(2)), return_exceptions=True)

    assert [str(r) for r in asyncio.run(scenario())] == ["broken model", "broken model"]


@pytest.mark.parametrize(
    ("requests", "failing"),
    [
        ([_rows(1), _rows(-2), _rows(3, 4)], [1]),
        ([_rows(-1), _rows(2), _rows(3), _rows(4, 5), _rows(-6, 7)], [0, 4]),
        ([_rows(1), _rows(2), _rows(3), _rows(4), _rows(5), _rows(6), _rows(7), _rows(-8)], [7]),
    ],
)
def test_a_request_the_model_cannot_score_fails_alone(requests: list[Rows], failing: list[int]) -> None:
    async def scenario() -> list[BaseException | np.ndarray]:
        batcher = Batcher(Model(), max_batch_rows=100, max_waiting_rows=100)
        return await asyncio.gather(*(batcher(rows) for rows in requests), return_exceptions=True)

    outcomes = asyncio.run(scenario())
    for index, (rows, outcome) in enumerate(zip(requests, outcomes, strict=True)):
        if index in failing:
            assert isinstance(outcome, ValueError), outcome
            assert "cannot score" in str(outcome)
        else:
            assert isinstance(outcome, np.ndarray), outcome
            assert outcome.ravel().tolist() == [row["x"] for row in rows]


def test_a_failing_batch_is_bisected_not_retried_request_by_request() -> None:
    model = Model()
    requests = [_rows(x) for x in range(1, 16)] + [_rows(-16)]

    async def scenario() -> None:
        batcher = Batcher(model, max_batch_rows=100, max_waiting_rows=100)
        await asyncio.gather(*(batcher(rows) for rows in requests), return_exceptions=True)

    asyncio.run(scenario())
    # One merged call of all 16, then two halves per level down to the culprit: 1 + 2 * log2(16) calls, not 1 + 16.
    assert model.calls == [16, 8, 8, 4, 4, 2, 2, 1, 1]


def test_a_cancelled_caller_is_skipped() -> None:
    model = Model()

    async def scenario() -> np.ndarray:
        batcher = Batcher(model, max_batch_rows=100, max_waiting_rows=100)
        model.gate.clear()
        first = asyncio.create_task(batcher(_rows(0)))
        await asyncio.sleep(0.02)
        gone = asyncio.create_task(batcher(_rows(1, 2)))
        kept = asyncio.create_task(batcher(_rows(3)))
        await asyncio.sleep(0.01)
        gone.cancel()
        model.gate.set()
        await first
        return await kept

    assert asyncio.run(scenario()).ravel().tolist() == [3]
    assert model.calls == [1, 1]


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_rows=0"):
        Batcher(Model(), max_batch_rows=0, max_waiting_rows=1)
