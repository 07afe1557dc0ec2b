"""A small HTTP client for the service tests: raw bytes in, status, headers and parsed JSON out."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pandas as pd


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def request(
    url: str,
    path: str,
    *,
    method: str = "POST",
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        chunked = body is not None and not isinstance(body, bytes)
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode())
    finally:
        connection.close()


def post_json(url: str, payload: Any, *, path: str = "/predict") -> Reply:
    return request(url, path, body=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready records: a missing cell is null (JSON has no NaN, and a user's data set has gaps)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def a_label(reply: Reply, index: int = 0) -> str:
    """The `index`-th distinct true label for a /predict answer's first record, as the log stores it: a class of the
    model, or for a regression a number near its prediction (text, as a CSV cell; stored as `repr(float)`)."""
    first = reply.json()["predictions"][0]
    if "probabilities" in first:
        return str(sorted(first["probabilities"])[index])
    return repr(float(first["value"]) + index)
