"""The BentoML prediction service: POST /predict and GET /metadata over models/model.skops (checked against
dvc.lock at start-up). Bodies: payloads.py; settings: settings.py; request checks: guard.py; batching: batching.py."""

from __future__ import annotations

import gc
import math
from typing import Any, cast

import bentoml
from bentoml.exceptions import ServiceUnavailable
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mltemplate import model as model_files
from mltemplate.metadata import current_release, read_model_metadata
from mltemplate.paths import DVC_LOCK, MODEL_METADATA
from mltemplate.serving.batching import Batcher, Overloaded
from mltemplate.serving.guard import RequestGuard
from mltemplate.serving.payloads import describe, predictions, request_model, response_model
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
PredictResponse = response_model(METADATA)
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
            self._predict,
            max_batch_rows=max(SETTINGS.max_batch_rows, SETTINGS.max_rows) if SETTINGS.batching else 1,
            max_waiting_rows=SETTINGS.max_waiting_rows,
        )
        # Everything loaded so far lives as long as the worker: keep it out of the garbage collector's scans,
        # whose full passes over BentoML's, pandas' and scikit-learn's objects otherwise stall requests.
        gc.collect()
        gc.freeze()

    def _predict(self, rows: list[tuple[Any, ...]]) -> Any:
        return model_files.predict(self.model, rows)

    @bentoml.api(route="/predict", input_spec=PredictRequest, output_spec=PredictResponse)  # type: ignore[untyped-decorator]
    async def predict(self, records: list[BaseModel]) -> BaseModel:
        """Label and class probabilities (classification) or the predicted number (regression) for each record,
        from the same function `evaluate` scores."""
        # Field order is schema order (see record_model): each record's values are a row as model.to_frame takes it.
        rows = [tuple(record.__dict__.values()) for record in records]
        try:
            output = await self.batcher(rows)
        except Overloaded as error:
            raise ServiceUnavailable(str(error)) from None
        # model_construct: the values are ours and already typed; validating them again would only cost time.
        return PredictResponse.model_construct(
            model_version=self.release.version, predictions=predictions(self.model, output)
        )


# The decorators made PredictionService a bentoml Service; its stubs still show the class.
cast(Any, PredictionService).add_asgi_middleware(
    RequestGuard,
    max_body_bytes=SETTINGS.max_body_bytes,
    max_concurrency=math.ceil(SETTINGS.max_concurrency / SETTINGS.workers),
    retry_after_s=SETTINGS.retry_after_s,
)
