"""What the protocol modules (v2.py, invocations.py) need of the service: its model, its release and `answer`, the
one call that scores, checks and logs for every path; and how they reply when it refuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import bentoml
import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from mltemplate.diagnosis import Unscorable
from mltemplate.identity import Release
from mltemplate.model import TrainedModel


@dataclass(frozen=True)
class Answer:
    """The model's output for a request's rows (class probabilities, or values) and their labels (None: regression)."""

    output: np.ndarray
    labels: list[str] | None
    request_id: str
    """The service's id of this answer in the prediction log (POST /feedback labels it; X-Request-ID header)."""


class Refused(Exception):
    """Input the model cannot score (found by diagnosis.unscorable after the model failed on it alone)."""

    def __init__(self, found: Unscorable, message: str) -> None:
        super().__init__(message)
        self.found = found


class Scorer(Protocol):
    """The service instance as the protocol modules see it."""

    model: TrainedModel
    release: Release
    max_rows: int

    async def answer(self, rows: Any, client_request_id: str | None) -> Answer: ...


def scorer() -> Scorer:
    """The service instance serving this request."""
    service: Scorer = bentoml.get_current_service()
    return service


def client_request_id(request: Request) -> str | None:
    """The client's own X-Request-ID (the guard checked it), logged beside the service's id."""
    return request.headers.get("x-request-id")


def json_response(body: Any, status: int = 200, *, request_id: str | None = None) -> Response:
    """orjson's bytes (numpy arrays as lists; floats in the shortest form that reads back the same); an answer's
    X-Request-ID header when it has one."""
    headers = {"X-Request-ID": request_id} if request_id is not None else None
    data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(data, status, headers=headers, media_type="application/json")
