"""The BentoML prediction service: POST /predict and GET /metadata over models/model.skops (checked against
dvc.lock at start-up), and POST /feedback for the true labels of logged answers; the same model also speaks the Open
Inference Protocol (v2.py) and MLflow's scoring protocol (invocations.py), every path scored and logged through
`answer`. It reads the model's own files (models/, metrics.json, dvc.lock), never params.yaml. Bodies: payloads.py;
settings: settings.py; request checks: guard.py (limits, shape, refusals, replies); request ids: ids.py; unknown
paths' metrics: paths.py; /readyz and /livez: health.py; batching: batching.py; feedback: feedback.py and
labellers.py; the prediction log: mltemplate.monitoring.log (docs/monitoring.md)."""

from __future__ import annotations

import asyncio
import gc
import logging
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

from mltemplate.columns import Block
from mltemplate.diagnosis import unscorable
from mltemplate.identity import current_release
from mltemplate.model import ModelError, load, verify
from mltemplate.model_metadata import read_model_metadata
from mltemplate.monitoring import codec, store
from mltemplate.monitoring.log import PredictionLog
from mltemplate.paths import DVC_LOCK, MODEL_METADATA
from mltemplate.predict import labels, predict
from mltemplate.serving import feedback, health, invocations, labellers, refusals, v2
from mltemplate.serving.batching import Batcher, Overloaded
from mltemplate.serving.guard import RequestGuard
from mltemplate.serving.ids import RequestIds, derive_key
from mltemplate.serving.limits import BodyBudget
from mltemplate.serving.paths import label_paths
from mltemplate.serving.payloads import describe, held_out_metrics, predictions, request_model, response_model
from mltemplate.serving.scorer import Answer, Refused
from mltemplate.serving.settings import ServingSettings, load_settings
from mltemplate.serving.shape import RequestShape

logger = logging.getLogger(__name__)


async def _metadata(request: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    return JSONResponse(service.metadata)


# Checked on import, so that `bentoml build` refuses a model that dvc.lock does not record, and `bentoml serve`
# exits with the reason instead of restarting workers that fail in __init__. Only hashes here; no model load.
SETTINGS: ServingSettings = load_settings()
LABELLERS = labellers.load(
    SETTINGS.feedback_token.get_secret_value() if SETTINGS.feedback_token is not None else None,
    SETTINGS.feedback_token_file,
)
MODEL_MD5 = verify(lock=DVC_LOCK)
METADATA = read_model_metadata()
SCHEMA = METADATA.input_schema
PredictRequest = request_model(
    SCHEMA, max_rows=SETTINGS.max_rows, nullable=METADATA.nullable, categories=METADATA.categories
)
PredictResponse = response_model(METADATA)
BUDGET = BodyBudget(SETTINGS.max_inflight_body_bytes)
"""This worker's body budget: the guard reserves on it, /readyz and /livez look at it."""
metadata_app = Starlette(
    routes=[Route("/metadata", _metadata, methods=["GET"]), Route("/feedback", feedback.route, methods=["POST"])]
)


@bentoml.asgi_app(metadata_app, path="/")
@bentoml.asgi_app(v2.app, path="/")
@bentoml.asgi_app(invocations.app, path="/")
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
        self.model = load(lock=DVC_LOCK)
        if self.model.metadata.model_md5 != MODEL_MD5 or self.model.schema != SCHEMA:
            raise ModelError(
                f"{MODEL_METADATA} changed after the service was imported: restart it to serve the new model"
            )
        self.release = current_release(self.model.metadata)
        # Built once, from the model's own files: what /metadata answers cannot drift from what is served.
        self.metadata = describe(self.model, self.release, held_out_metrics())
        self.max_rows = SETTINGS.max_rows
        self.batcher = Batcher(
            self._predict,
            max_batch_rows=max(SETTINGS.max_batch_rows, SETTINGS.max_rows) if SETTINGS.batching else 1,
            max_waiting_rows=SETTINGS.max_waiting_rows,
        )
        # Columnar bodies (V2 tensors, /invocations) arrive as Blocks, merged by concatenating their arrays.
        self.block_batcher = Batcher(
            self._predict,
            max_batch_rows=self.batcher.max_batch_rows,
            max_waiting_rows=SETTINGS.max_waiting_rows,
            merge=Block.concat,
        )
        self.db_url = store.database_url()
        # Signed with a key every worker and replica derives from the shared feedback credentials (ids.py).
        self.ids = RequestIds(derive_key(LABELLERS.secret) if LABELLERS.secret is not None else None)
        self.feedback = (
            feedback.FeedbackDesk(
                labellers=LABELLERS,
                ids=self.ids,
                limit=labellers.RateLimit(SETTINGS.feedback_rate, SETTINGS.feedback_burst),
                db_url=self.db_url,
                spool_dir=store.spool_dir() / "labels",
                classes=self.model.classes if self.model.schema.classification else None,
                budget_s=SETTINGS.timeout_s * 0.8,
                max_inflight_labels=SETTINGS.max_inflight_labels,
            )
            if SETTINGS.prediction_log
            else None
        )
        refusals.install(values=SETTINGS.debug_refusals)
        self.prediction_log = (
            PredictionLog(
                self.db_url,
                columns=codec.log_columns(self.model.schema, self.model.classes),
                spool_dir=store.spool_dir(),
                spool_max_bytes=SETTINGS.spool_max_bytes // SETTINGS.workers,
                max_queued_records=SETTINGS.log_queue_records,
                statement_timeout_s=SETTINGS.log_db_timeout_s,
                **log_counters(),
            )
            if SETTINGS.prediction_log
            else None
        )
        self.health = health.Health(ready=True, alive=True)
        # Everything loaded so far lives as long as the worker: keep it out of the garbage collector's scans,
        # whose full passes over BentoML's, pandas' and scikit-learn's objects otherwise stall requests.
        gc.collect()
        gc.freeze()

    def _predict(self, rows: list[tuple[Any, ...]] | Block) -> Any:
        return predict(self.model, rows.frame() if isinstance(rows, Block) else rows)

    @bentoml.on_shutdown  # type: ignore[untyped-decorator]
    def flush_prediction_log(self) -> None:
        """On SIGTERM: what is queued goes to the database, or to the spool when the database is down."""
        if self.prediction_log is not None:
            self.prediction_log.close()
        if self.feedback is not None:
            self.feedback.close()

    def _health(self) -> health.Health:
        found = health.judge(
            model_loaded=getattr(self, "model", None) is not None,
            unaccounted_bytes=BUDGET.unaccounted(),
            stuck_bytes=BUDGET.held_longer_than(health.STUCK_AFTER_TIMEOUTS * SETTINGS.timeout_s),
            budget_bytes=BUDGET.limit,
            max_body_bytes=SETTINGS.max_body_bytes,
            model_call_s=self.batcher.call_seconds(),
            timeout_s=SETTINGS.timeout_s,
        )
        if found != self.health:
            logger.log(logging.INFO if found.ready else logging.ERROR, "health: %s", found.reason or "ready")
        self.health = found
        return found

    async def __is_ready__(self) -> bool:
        """/readyz: False takes the pod out of its Service (health.py)."""
        return self._health().ready

    async def __is_alive__(self) -> bool:
        """/livez: False makes Kubernetes restart the pod."""
        return self._health().alive

    @bentoml.api(route="/predict", input_spec=PredictRequest, output_spec=PredictResponse)  # type: ignore[untyped-decorator]
    async def predict(self, records: list[BaseModel], ctx: bentoml.Context) -> BaseModel:
        """Label and class probabilities (classification) or the predicted number (regression) for each record,
        from the same function `evaluate` scores; the answer carries the id the service logs it under (also in the
        X-Request-ID header): POST /feedback labels it. A client's own X-Request-ID is logged beside it."""
        # Field order is schema order (see record_model): each record's values are a row as predict.to_frame takes it.
        rows = [tuple(record.__dict__.values()) for record in records]
        try:
            answer = await self.answer(rows, ctx.request.headers.get("x-request-id"))
        except Overloaded as error:
            raise ServiceUnavailable(str(error)) from None
        except Refused as refused:
            found = refused.found
            loc: tuple[str | int, ...] = ("records", found.row) + ((found.feature,) if found.feature else ())
            detail = InitErrorDetails(
                type=PydanticCustomError("unscorable", "{reason}", {"reason": str(refused)}),
                loc=loc,
                input=found.value if found.feature else None,
            )
            # BentoML answers a pydantic ValidationError with 400 and its errors; the guard puts the field up front.
            raise ValidationError.from_exception_data("PredictRequest", [detail]) from refused.__cause__
        ctx.response.headers["X-Request-ID"] = answer.request_id
        # model_construct: the values are ours and already typed; validating them again would only cost time.
        return PredictResponse.model_construct(
            request_id=answer.request_id,
            model_version=self.release.version,
            predictions=predictions(self.model, answer.output, answer.labels),
        )

    async def answer(self, rows: list[tuple[Any, ...]] | Block, client_request_id: str | None) -> Answer:
        """What every path answers: the model's output for `rows` (tuples in schema order, or a columns.Block), the
        labels for classification, and the id the service logged it under (the client's X-Request-ID is kept
        beside it). Overloaded when too many rows wait; Refused naming the record (and field) the model cannot
        score."""
        batcher = self.block_batcher if isinstance(rows, Block) else self.batcher
        try:
            output = await batcher(rows)
        except Overloaded:
            raise
        except Exception as error:  # the batcher ran these rows alone: the fault is in them, or in the server
            await self._refuse_unscorable(rows, error)
            raise
        if not np.isfinite(output).all():
            await self._refuse_unscorable(rows, None)
            raise RuntimeError("the model answered non-finite numbers for input it scores row by row")
        # A regression model's answer is its number: no label (and none logged).
        named = labels(self.model, output) if self.model.schema.classification else None
        # The key is the service's own: a client's X-Request-ID (checked by the guard) is only a correlation field,
        # so no client can make its records land under another client's id.
        request_id = self.ids.issue(len(rows))
        if self.prediction_log is not None:
            self.prediction_log.record(
                request_id, self.release.version, rows, named, output, client_request_id=client_request_id
            )
        return Answer(output, named, request_id)

    async def _refuse_unscorable(self, rows: list[tuple[Any, ...]] | Block, error: Exception | None) -> None:
        """Raise Refused naming the record (and field) the model cannot score; return when the input is not to blame."""
        records = rows.frame() if isinstance(rows, Block) else rows
        found = await asyncio.to_thread(unscorable, self.model, records)
        if found is None:
            return
        message = found.describe() + (f" ({type(error).__name__}: {error})" if error is not None else "")
        raise Refused(found, message) from error


def log_counters() -> dict[str, Any]:
    """The prediction log's counters on /metrics, created once per worker process."""
    # Imported here, in the worker: BentoML points prometheus_client at its multiprocess directory before __init__.
    import prometheus_client

    if not _COUNTERS:
        for name, what in (("spooled", "written to the spool"), ("dropped", "dropped: database and spool refused")):
            counter = prometheus_client.Counter(f"prediction_log_{name}_records", f"Answered records {what}")
            _COUNTERS[f"on_{name}"] = counter.inc
    return dict(_COUNTERS)


_COUNTERS: dict[str, Any] = {}

# The decorators made PredictionService a bentoml Service; its stubs still show the class.
cast(Any, PredictionService).add_asgi_middleware(
    RequestGuard,
    max_body_bytes=SETTINGS.max_body_bytes,
    max_concurrency=math.ceil(SETTINGS.max_concurrency / SETTINGS.workers),
    retry_after_s=SETTINGS.retry_after_s,
    budget=BUDGET,
    drain_s=SETTINGS.body_timeout_s,  # a refused body is drained as long as a body may take, no longer
    body_timeout_s=SETTINGS.body_timeout_s,
    body_checks={
        "/predict": RequestShape(len(SCHEMA.features), SETTINGS.max_rows, cast(Any, PredictRequest).plausible)
    },
    refusals=refusals.RefusalLog(
        {*SCHEMA.features, "records", "labels", "request_id", "label", "position"},
        values=SETTINGS.debug_refusals,
    ),
)
label_paths(PredictionService)  # unknown paths share one label in BentoML's metrics (paths.py)
