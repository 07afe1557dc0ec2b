"""POST /feedback: true labels for the service's answers, from authorised labellers only. The bearer credential is
checked first (401, 403), then the body (400), the labels in progress in the worker and the labeller's rate (429). A
label is accepted when it names a record the service answered: an id this service signed (known at once, in any
worker, before the log has it) or one the log holds; the others are named, and stored with none unless the call asks
for all or nothing. The accepted labels are stored as one submission (200), once however often it is sent, or, while
the database is down, kept in the labels spool (202) and written when it answers. An answer is the outcome: a call
that runs out of time before its commit stores nothing (503), and a retry of a timed-out call answers what is stored."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bentoml
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from mltemplate.monitoring import feedback, labels, migrations, store
from mltemplate.serving.ids import RequestIds
from mltemplate.serving.labellers import Labellers, RateLimit, Refused, retry_after

logger = logging.getLogger(__name__)

UNAVAILABLE = "cannot be checked while the monitoring database is unavailable; send it again later"
OUTAGES = (store.StoreError, sa.exc.OperationalError, sa.exc.InterfaceError)
"""What a database that is down, unreachable or locked raises; anything else is a fault, not an outage."""
ATTEMPTS, RETRY_S = 2, 0.1
"""Tries to store a call's labels before they go to the spool, and the pause between them."""


@dataclass(frozen=True)
class Outcome:
    submission_id: str
    stored: int
    queued: int
    refused: list[feedback.Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "stored": self.stored,
            "queued": self.queued,
            "refused": [problem.to_dict() for problem in self.refused],
        }


class LabelsInProgress:
    """Labels being checked and stored in one worker, all calls together: at most `limit`, except that a call is
    always taken when none is in progress. Storing labels takes a thread, a database connection and a core; a
    call that would pass the limit answers 429 at once, so a flood of labels cannot slow the predictions it labels
    past their timeout, while many small calls (a label per answer) pass. Used on the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit, self.taken = limit, 0

    def take(self, labels: int) -> bool:
        if self.taken and self.taken + labels > self.limit:
            return False
        self.taken += labels
        return True

    def give_back(self, labels: int) -> None:
        self.taken -= labels


class FeedbackDesk:
    """One per worker: who may label, how fast, how many labels at once, which ids the service issued, and where
    labels go."""

    def __init__(
        self,
        *,
        labellers: Labellers,
        ids: RequestIds,
        limit: RateLimit,
        db_url: str,
        spool_dir: Path,
        classes: Sequence[str] | None,
        budget_s: float,
        max_inflight_labels: int,
    ) -> None:
        self.labellers, self.ids, self.limit, self.db_url, self.classes = labellers, ids, limit, db_url, classes
        self.in_progress = LabelsInProgress(max_inflight_labels)
        self.budget_s = budget_s
        """How long a call may take to commit; past it nothing is stored (503): less than the server's timeout."""
        self.db: sa.Engine | None = None
        self.spool = labels.LabelSpool(db_url, spool_dir)

    def _engine(self) -> sa.Engine:
        if self.db is None:
            self.db = migrations.open_store(self.db_url)
        return self.db

    def records(self, request_ids: Sequence[str]) -> tuple[dict[str, int], dict[str, str]]:
        """How many records each answered request held: from the id's signature, else from the log; and the ids
        that could not be looked up (the database is down), with why."""
        known = {rid: n for rid in dict.fromkeys(request_ids) if (n := self.ids.records(rid)) is not None}
        others = [rid for rid in dict.fromkeys(request_ids) if rid not in known]
        if not others:
            return known, {}
        try:
            with self._engine().connect() as connection:
                known |= store.request_positions(connection, others)
        except OUTAGES:
            return known, dict.fromkeys(others, UNAVAILABLE)
        return known, {}

    def submit(self, submission: feedback.Submission, labeller: str, abandoned: Callable[[], bool]) -> Outcome:
        """Accept, store or spool one call's labels (in a worker thread). FeedbackError when none may be stored."""
        known, unchecked = self.records([label.request_id for label in submission.labels])
        accepted, problems = feedback.resolve(submission.labels, known, unchecked=unchecked)
        if problems and (submission.all_or_nothing or not accepted):
            raise feedback.FeedbackError(problems)
        key, now = submission.key(), time.time()
        for attempt in range(ATTEMPTS):
            try:
                stored = labels.store_labels(
                    self._engine(), accepted, labeller=labeller, submission=key, ts=now, abandoned=abandoned
                )
                return Outcome(key, stored, 0, problems)
            except OUTAGES as error:
                if abandoned():
                    raise labels.TooLate(
                        "the call was given up while the database was down; nothing was kept"
                    ) from None
                if attempt + 1 < ATTEMPTS:
                    time.sleep(RETRY_S)  # a lock race of SQLite's, say, is over by then; an outage is not
                    continue
                reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
                logger.warning("feedback: database unavailable (%s); %d label(s) spooled", reason, len(accepted))
        self.spool.add(accepted, labeller=labeller, submission=key, ts=now)
        return Outcome(key, 0, len(accepted), problems)

    def close(self) -> None:
        self.spool.close()
        if self.db is not None:
            self.db.dispose()


def _refusal(
    status: int, error: str, field: str, *, headers: Mapping[str, str] | None = None, **more: Any
) -> JSONResponse:
    return JSONResponse({"error": error, "field": field, **more}, status_code=status, headers=dict(headers or {}))


async def route(request: Request) -> JSONResponse:
    """The POST /feedback endpoint (see the module's docstring; docs/monitoring.md)."""
    service = bentoml.get_current_service()
    desk: FeedbackDesk | None = service.feedback
    body = await request.body()  # read before any answer: a client that writes its whole body first reads it
    if desk is None:
        return _refusal(404, "the prediction log is off (SERVE_PREDICTION_LOG=false): no predictions to label", "body")
    if not desk.labellers:
        return _refusal(404, "POST /feedback is off: no SERVE_FEEDBACK_TOKEN or SERVE_FEEDBACK_TOKEN_FILE", "body")
    try:
        labeller = desk.labellers.authenticate(request.headers.get("authorization"))
    except Refused as refused:
        challenge = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
        return _refusal(refused.status, str(refused), "Authorization", headers=challenge)
    try:
        submission = feedback.parse(json.loads(body), desk.classes)
    except RecursionError:
        return _refusal(400, "body is nested too deeply to be labels", "body")
    except ValueError as error:
        if not isinstance(error, feedback.FeedbackError):
            return _refusal(400, f"body is not valid JSON ({error})", "body")
        return _problems(400, error)
    count, in_progress = len(submission.labels), desk.in_progress
    if not in_progress.take(count):
        message = (
            f"{in_progress.taken} labels are being stored in this worker; {count} more would pass "
            f"{in_progress.limit} (SERVE_MAX_INFLIGHT_LABELS); retry later"
        )
        return _refusal(429, message, "labels", headers={"Retry-After": retry_after(1)})
    try:
        wait = desk.limit.take(labeller, count)
        if wait:
            message = f"labeller {labeller!r} sent more than {desk.limit.rate:g} labels a second; retry later"
            return _refusal(429, message, "labels", headers={"Retry-After": retry_after(wait)})
        return await _submit(desk, submission, labeller)
    finally:
        in_progress.give_back(count)


async def _submit(desk: FeedbackDesk, submission: feedback.Submission, labeller: str) -> JSONResponse:
    given_up = threading.Event()
    deadline = time.monotonic() + desk.budget_s
    again = {"Retry-After": retry_after(1)}
    try:
        outcome = await run_in_threadpool(
            desk.submit, submission, labeller, lambda: given_up.is_set() or time.monotonic() > deadline
        )
    except asyncio.CancelledError:  # the server's timeout (504): the thread stores nothing unless already committed
        given_up.set()
        raise
    except labels.TooLate as error:
        return _refusal(503, f"{error}; send the same labels again", "body", headers=again)
    except labels.SubmissionConflict as error:
        return _refusal(409, str(error), "submission_id")
    except feedback.FeedbackError as error:
        unavailable = any(problem.error == UNAVAILABLE for problem in error.problems)
        return _problems(503 if unavailable else 422, error, headers=again if unavailable else None)
    return JSONResponse(outcome.to_dict(), status_code=200 if not outcome.queued else 202)


MAX_LISTED_PROBLEMS = 20
"""A refusal lists at most this many problems (and counts them all): 10,000 bad labels answer a small body."""


def _problems(status: int, error: feedback.FeedbackError, *, headers: Mapping[str, str] | None = None) -> JSONResponse:
    first = error.problems[0]
    errors = [problem.to_dict() for problem in error.problems[:MAX_LISTED_PROBLEMS]]
    return _refusal(status, str(error), first.field, headers=headers, errors=errors, error_count=len(error.problems))
