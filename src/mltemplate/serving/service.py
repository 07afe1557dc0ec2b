"""The BentoML prediction service: POST /predict and GET /metadata over models/model.skops (checked against
dvc.lock at start-up). Bodies: payloads.py; settings: settings.py; request checks: guard.py; batching: batching.py."""

from __future__ import annotations

import asyncio
import gc
import math
from typing import Any, cast

import bentoml
import numpy as np
from bentoml.exceptions import ServiceUnavailable
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mltemplate import model as model_files
from mltemplate.metadata import current_release, read_model_metadata
from mltemplate.paths import DVC_LOCK, MODEL_METADATA
from mltemplate.serving.batching import Batcher, Overloaded
from mltemplate.serving.guard import RequestGuard
from mltemplate.serving.payloads import Prediction, PredictResponse, describe, request_model
from mltemplate.serving.settings import ServingSettings, load_settings


async def _metadata(request: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    return JSONResponse(service.metadata)


# Checked on import, so that `bentoml build` refuses a model that dvc.lock does not record, and `bentoml serve`
# exits with the reason instead of restarting workers that fail in __init__. Only hashes here; no model load.
SETTINGS: ServingSettings = load_settings()
MODEL_MD5 = model_files.check(lock=DVC_LOCK)
METADATA = read_model_metadata()
SCHEMA = METADATA.input_schema
PredictRequest = request_model(
    SCHEMA, max_rows=SETTINGS.max_rows, nullable=METADATA.nullable, categories=METADATA.categories
)
metadata_app = Starlette(routes=[Route("/metadata", _metadata, methods=["GET"])])


@bentoml.asgi_app(metadata_app, path="/")
@bentoml.service(
    name="prediction-service",
    workers=SETTINGS.workers,
    traffic={"timeout": SETTINGS.timeout_s},
    logging={"access": {"enabled": SETTINGS.access_log}},
)
class PredictionService:
    """Serves the model the pipeline produced; refuses to start when it is missing or not the file dvc.lock records."""

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits

        # One worker per core: BLAS/OpenMP threads inside a worker would only fight the other workers.
        threadpool_limits(limits=SETTINGS.threads_per_worker)
        self.model = model_files.load(lock=DVC_LOCK)
        if self.model.metadata.model_md5 != MODEL_MD5 or self.model.schema != SCHEMA:
            raise model_files.ModelError(
                f"{MODEL_METADATA} changed after the service was imported: restart it to serve the new model"
            )
        self.release = current_release(self.model.metadata)
        self.metadata = describe(self.model, self.release)
        self.batcher = Batcher(
            self._predict_proba,
            max_batch_rows=max(SETTINGS.max_batch_rows, SETTINGS.max_rows) if SETTINGS.batching else 1,
            max_waiting_rows=SETTINGS.max_waiting_rows,
        )
        # Everything loaded so far lives as long as the worker: keep it out of the garbage collector's scans,
        # whose full passes over BentoML's, pandas' and scikit-learn's objects otherwise stall requests.
        gc.collect()
        gc.freeze()

    def _predict_proba(self, rows: list[tuple[Any, ...]]) -> Any:
        return model_files.predict_proba(self.model, rows)

    @bentoml.api(route="/predict", input_spec=PredictRequest)  # type: ignore[untyped-decorator]
    async def predict(self, records: list[BaseModel]) -> PredictResponse:
        """Label and class probabilities for each record, from the same function `evaluate` scores."""
        # Field order is schema order (see record_model): each record's values are a row as model.to_frame takes it.
        rows = [tuple(record.__dict__.values()) for record in records]
        try:
            probabilities = await self.batcher(rows)
        except Overloaded as error:
            raise ServiceUnavailable(str(error)) from None
        except Exception as error:  # the batcher ran these rows alone: the fault is in them, or in the server
            await self._refuse_unscorable(rows, error)
            raise
        if not np.isfinite(probabilities).all():
            await self._refuse_unscorable(rows, None)
            raise RuntimeError("the model answered non-finite probabilities for input it scores row by row")
        classes = self.model.classes
        predictions = [
            Prediction(label=label, probabilities=dict(zip(classes, row, strict=True)))
            for label, row in zip(model_files.labels(self.model, probabilities), probabilities.tolist(), strict=True)
        ]
        # model_construct: the values are ours and already typed; validating them again would only cost time.
        return PredictResponse.model_construct(model_version=self.release.version, predictions=predictions)

    async def _refuse_unscorable(self, rows: list[tuple[Any, ...]], error: Exception | None) -> None:
        """Raise a 400 naming the record (and field) the model cannot score; return when the input is not to blame."""
        found = await asyncio.to_thread(model_files.unscorable, self.model, rows)
        if found is None:
            return
        loc: tuple[str | int, ...] = ("records", found.row) + ((found.feature,) if found.feature else ())
        message = found.describe() + (f" ({type(error).__name__}: {error})" if error is not None else "")
        detail = InitErrorDetails(
            type=PydanticCustomError("unscorable", "{reason}", {"reason": message}),
            loc=loc,
            input=found.value if found.feature else None,
        )
        # BentoML answers a pydantic ValidationError with 400 and its errors; the guard puts the field up front.
        raise ValidationError.from_exception_data("PredictRequest", [detail]) from error


# The decorators made PredictionService a bentoml Service; its stubs still show the class.
cast(Any, PredictionService).add_asgi_middleware(
    RequestGuard,
    max_body_bytes=SETTINGS.max_body_bytes,
    max_concurrency=math.ceil(SETTINGS.max_concurrency / SETTINGS.workers),
    retry_after_s=SETTINGS.retry_after_s,
    max_inflight_body_bytes=SETTINGS.max_inflight_body_bytes,
    drain_s=SETTINGS.timeout_s,
)
