"""POST /feedback's route with its desk in hand (the service stubbed): how many labels a worker stores at once. The
served endpoint, its credentials, rates and storage are tested under `bentoml serve` (tests/monitoring)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from mltemplate.serving import feedback, labellers
from mltemplate.serving.ids import RequestIds

TOKEN = "alice-token-0123456789"


def test_labels_are_taken_up_to_the_limit_and_one_call_always_when_none_is_in_progress() -> None:
    in_progress = feedback.LabelsInProgress(10)
    assert [in_progress.take(6), in_progress.take(5), in_progress.take(4)] == [True, False, True]
    in_progress.give_back(6)
    in_progress.give_back(4)
    assert in_progress.take(25)  # more than the limit, alone
    assert not in_progress.take(1)


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[feedback.FeedbackDesk]:
    found = feedback.FeedbackDesk(
        labellers=labellers.load(f"alice:{TOKEN}", None),
        ids=RequestIds(),
        limit=labellers.RateLimit(10_000, 10_000),
        db_url=f"sqlite:///{tmp_path / 'log.db'}",
        spool_dir=tmp_path / "spool",
        classes=["no", "yes"],
        budget_s=5.0,
        max_inflight_labels=3,
    )
    monkeypatch.setattr(feedback.bentoml, "get_current_service", lambda: SimpleNamespace(feedback=found))
    yield found
    found.close()


def call(body: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/feedback",
        "headers": [(b"authorization", f"Bearer {TOKEN}".encode()), (b"content-type", b"application/json")],
    }
    sent = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return sent.pop(0) if sent else {"type": "http.disconnect"}

    return Request(scope, receive)


def labels(count: int) -> bytes:
    items = [{"request_id": f"r-{i}", "position": 0, "label": "yes"} for i in range(count)]
    return json.dumps({"labels": items}).encode()


def test_a_call_past_the_labels_in_progress_gets_429_at_once_and_a_finished_call_gives_them_back(
    desk: feedback.FeedbackDesk,
) -> None:
    release = threading.Event()

    def slow_submit(submission: Any, labeller: str, abandoned: Any) -> feedback.Outcome:
        if len(submission.labels) == 2:  # the first call holds its labels until told
            assert release.wait(10)
        return feedback.Outcome("s", len(submission.labels), 0)

    desk.submit = slow_submit  # type: ignore[method-assign]

    async def scenario() -> list[Any]:
        first = asyncio.create_task(feedback.route(call(labels(2))))
        while desk.in_progress.taken == 0:
            await asyncio.sleep(0.01)
        refused = await feedback.route(call(labels(2)))  # 2 + 2 > 3
        beside = await feedback.route(call(labels(1)))  # 2 + 1 fits
        release.set()
        answered = await first
        malformed = await feedback.route(call(b"{"))
        alone = await feedback.route(call(labels(5)))  # more than the limit, with none in progress
        desk.limit = labellers.RateLimit(1e-6, 1)
        await feedback.route(call(labels(1)))
        too_fast = await feedback.route(call(labels(1)))
        return [refused, beside, answered, malformed, alone, too_fast]

    refused, beside, answered, malformed, alone, too_fast = asyncio.run(scenario())
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    problem = json.loads(refused.body)
    assert problem["field"] == "labels"
    assert "2 labels are being stored in this worker; 2 more would pass 3" in problem["error"]
    assert [json.loads(r.body)["stored"] for r in (beside, answered, alone)] == [1, 2, 5]
    assert malformed.status_code == 400
    assert too_fast.status_code == 429
    assert "labels a second" in json.loads(too_fast.body)["error"]
    assert desk.in_progress.taken == 0  # every call gave its labels back, the refused and the rate-limited too
