"""Whether a worker can serve (readiness: /readyz) and whether it can recover on its own (liveness: /livez), judged
from what it holds: the model, the body budget (limits.py), and the model call in progress (batching.py). Kubernetes
takes a pod that is not ready out of its Service and restarts one that is not alive."""

from __future__ import annotations

from dataclasses import dataclass

STUCK_AFTER_TIMEOUTS = 2
"""A request lives at most about one timeout (BentoML cancels it); bytes held for this many are stuck."""
HUNG_AFTER_TIMEOUTS = 6
"""A model call that outlives this many timeouts will not return: only a restart frees its thread."""


@dataclass(frozen=True)
class Health:
    ready: bool
    alive: bool
    reason: str = ""


def judge(
    *,
    model_loaded: bool,
    unaccounted_bytes: int,
    stuck_bytes: int,
    budget_bytes: int,
    max_body_bytes: int,
    model_call_s: float,
    timeout_s: float,
) -> Health:
    """`unaccounted_bytes`: reserved by no request (a leak); `stuck_bytes`: held by requests older than
    STUCK_AFTER_TIMEOUTS timeouts; `model_call_s`: how long the model call in progress has run (0 when none)."""
    if not model_loaded:
        return Health(ready=False, alive=False, reason="no model loaded")
    if unaccounted_bytes:
        return Health(
            ready=False,
            alive=False,
            reason=f"{unaccounted_bytes} body bytes are reserved by no request: the budget cannot recover",
        )
    if model_call_s > HUNG_AFTER_TIMEOUTS * timeout_s:
        return Health(ready=False, alive=False, reason=f"a model call has run {model_call_s:.0f} s and will not return")
    if model_call_s > timeout_s:
        return Health(ready=False, alive=True, reason=f"a model call has run {model_call_s:.0f} s, past the timeout")
    if budget_bytes - stuck_bytes < max_body_bytes:
        return Health(
            ready=False,
            alive=True,
            reason=f"{stuck_bytes} body bytes held past {STUCK_AFTER_TIMEOUTS} timeouts: "
            "the largest body could not be admitted",
        )
    return Health(ready=True, alive=True)
