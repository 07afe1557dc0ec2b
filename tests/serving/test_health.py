"""Readiness and liveness from what a worker holds: a leak or a hung model call ends both; stuck bytes or a slow
model call end readiness only, until they clear."""

from __future__ import annotations

from typing import Any

import pytest

from mltemplate.serving.health import HUNG_AFTER_TIMEOUTS, Health, judge

WELL: dict[str, Any] = {
    "model_loaded": True,
    "unaccounted_bytes": 0,
    "stuck_bytes": 0,
    "budget_bytes": 64,
    "max_body_bytes": 10,
    "model_call_s": 0.0,
    "timeout_s": 10.0,
}


@pytest.mark.parametrize(
    ("changes", "ready", "alive"),
    [
        ({}, True, True),
        ({"model_loaded": False}, False, False),
        ({"unaccounted_bytes": 1}, False, False),
        ({"stuck_bytes": 54}, True, True),
        ({"stuck_bytes": 55}, False, True),
        ({"model_call_s": 11.0}, False, True),
        ({"model_call_s": HUNG_AFTER_TIMEOUTS * 10.0 + 1}, False, False),
    ],
)
def test_health_follows_what_the_worker_holds(changes: dict[str, Any], ready: bool, alive: bool) -> None:
    found = judge(**{**WELL, **changes})
    assert (found.ready, found.alive) == (ready, alive)
    assert bool(found.reason) == (not ready)


def test_a_healthy_worker_has_no_reason() -> None:
    assert judge(**WELL) == Health(ready=True, alive=True)
