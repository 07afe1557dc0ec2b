"""The stack's ceiling: a typed BentoML endpoint that does no work, served like the prediction service (2 workers, no
access log, uvloop and httptools) and taking the same body as POST /predict. Run by benchmarks/protocols.py:
`bentoml serve benchmarks.noop_service:NoOpService`."""

from __future__ import annotations

import os

import bentoml

WORKERS = int(os.environ.get("SERVE_WORKERS", "2"))


@bentoml.service(name="noop-service", workers=WORKERS, logging={"access": {"enabled": False}})
class NoOpService:
    @bentoml.api(route="/predict")  # type: ignore[untyped-decorator]
    def predict(self, records: list[dict[str, float]]) -> dict[str, list[float]]:
        """Takes the records, validated as a list of objects of numbers, and answers nothing from them."""
        return {"predictions": []}
