"""Merge concurrent prediction requests into one model call. The pipeline costs milliseconds per call whatever
the row count, so rows that arrive while a call runs wait for it and then go together in the next one.
No timer: an idle server answers a lone request at once, and nothing is shed for missing a latency estimate.
Isolation: when a merged call raises, the batch is halved and each half retried, down to single requests, so only
the request whose rows make the model raise gets the error; its neighbours get the answer they would get alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Rows = Any
"""One request's rows, in whatever form `predict` takes (tuples in schema order, or a columns.Block), with a len()."""
Outcome = np.ndarray | Exception
"""One request's result: its rows of the model's answer, or the error the model raised on its rows alone."""


def concat_rows(batch: Sequence[Rows]) -> Rows:
    """Lists of rows as one list."""
    return [row for rows in batch for row in rows]


class Overloaded(RuntimeError):
    """More rows are waiting than the batcher may hold; the caller should answer 503 with Retry-After."""


class Batcher:
    """`await batcher(rows)` returns `predict(rows)`; calls that overlap share one `predict` on their rows."""

    def __init__(
        self,
        predict: Callable[[Rows], np.ndarray],
        *,
        max_batch_rows: int,
        max_waiting_rows: int,
        merge: Callable[[Sequence[Rows]], Rows] = concat_rows,
    ) -> None:
        if max_batch_rows < 1 or max_waiting_rows < 1:
            raise ValueError(f"row limits must be >= 1, got {max_batch_rows=} and {max_waiting_rows=}")
        self.predict = predict
        self.merge = merge
        self.max_batch_rows = max_batch_rows
        self.max_waiting_rows = max_waiting_rows
        self.waiting: list[tuple[Rows, asyncio.Future[np.ndarray]]] = []
        self.waiting_rows = 0
        self.running = False

    async def __call__(self, rows: Rows) -> np.ndarray:
        if self.waiting_rows + len(rows) > self.max_waiting_rows:
            raise Overloaded(f"{self.waiting_rows} rows already wait for the model (limit {self.max_waiting_rows})")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.waiting.append((rows, future))
        self.waiting_rows += len(rows)
        if not self.running:
            self.running = True
            asyncio.create_task(self._drain())  # noqa: RUF006 (it ends on its own when nothing waits; futures hold errors)
        return await future

    def _take(self) -> list[tuple[Rows, asyncio.Future[np.ndarray]]]:
        """Waiting requests, oldest first, up to max_batch_rows rows (always at least one request)."""
        taken: list[tuple[Rows, asyncio.Future[np.ndarray]]] = []
        size = 0
        while self.waiting and (not taken or size + len(self.waiting[0][0]) <= self.max_batch_rows):
            rows, future = self.waiting.pop(0)
            self.waiting_rows -= len(rows)
            if future.cancelled():  # its client timed out or left: don't spend the model on it
                continue
            taken.append((rows, future))
            size += len(rows)
        return taken

    def _settle(self, batch: list[Rows]) -> list[Outcome]:
        """Each request's outcome; one model call when it succeeds, else halves retried (bisection): k culprits
        among n requests cost about 2k·log2(n) extra calls, and only when something fails."""
        merged = self.merge(batch)
        try:
            result = self.predict(merged)
        except Exception as error:  # kept for its own request, who re-raises it: nothing is swallowed
            if len(batch) == 1:
                return [error]
            middle = len(batch) // 2
            return self._settle(batch[:middle]) + self._settle(batch[middle:])
        outcomes: list[Outcome] = []
        start = 0
        for rows in batch:
            outcomes.append(result[start : start + len(rows)])
            start += len(rows)
        return outcomes

    async def _drain(self) -> None:
        try:
            while self.waiting:
                taken = self._take()
                if not taken:
                    continue
                # A thread keeps the event loop reading (and batching) the next requests meanwhile.
                outcomes = await asyncio.to_thread(self._settle, [rows for rows, _ in taken])
                for (_, future), outcome in zip(taken, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self.running = False
