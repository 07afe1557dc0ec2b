"""Runtime settings of the prediction service, read from environment variables (never from params.yaml)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mltemplate.errors import Error

PREFIX = "SERVE_"


class SettingsError(Error, ValueError):
    """An environment variable holds a value the service cannot run with."""


class ServingSettings(BaseModel):
    """Each field is set by the environment variable SERVE_<FIELD NAME IN CAPITALS>."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(default=2, ge=1, le=64, description="Worker processes; one per core serves best.")
    threads_per_worker: int = Field(
        default=1, ge=1, le=64, description="BLAS/OpenMP threads per worker: one avoids oversubscribing the cores."
    )
    max_rows: int = Field(default=1024, ge=1, le=100_000, description="Most records one request may send.")
    max_body_bytes: int = Field(
        default=10 * 2**20, ge=1024, le=10 * 2**20, description="Largest request body; larger ones get 413."
    )
    max_concurrency: int = Field(
        default=256, ge=1, description="Requests in progress per service; more get 429 with Retry-After."
    )
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="Time to answer before 504.")
    retry_after_s: int = Field(default=1, ge=1, le=3600, description="Retry-After sent with 429 and 503.")
    batching: bool = Field(default=True, description="Merge concurrent requests into one model call.")
    max_batch_rows: int = Field(
        default=2048, ge=1, description="Most rows one merged model call holds (at least one whole request)."
    )
    max_waiting_rows: int = Field(
        default=65536, ge=1, description="Rows that may wait for the model per worker; more get 503 with Retry-After."
    )
    access_log: bool = Field(default=False, description="One log line per request (costs throughput).")
    prediction_log: bool = Field(
        default=True,
        description="Store every answered record in the monitoring database (MONITORING_DB_URL; docs/monitoring.md).",
    )


def load_settings(environ: Mapping[str, str] | None = None) -> ServingSettings:
    """Settings from SERVE_* variables; SettingsError names the variable and the rule it breaks."""
    environ = os.environ if environ is None else environ
    raw = {
        name: environ[f"{PREFIX}{name.upper()}"]
        for name in ServingSettings.model_fields
        if f"{PREFIX}{name.upper()}" in environ
    }
    unknown = sorted(key for key in environ if key.startswith(PREFIX) and key.removeprefix(PREFIX).lower() not in raw)
    if unknown:
        allowed = [f"{PREFIX}{name.upper()}" for name in ServingSettings.model_fields]
        raise SettingsError(f"unknown setting {unknown[0]}; the service reads {allowed}")
    try:
        return ServingSettings.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        name = f"{PREFIX}{str(first['loc'][0]).upper()}"
        raise SettingsError(f"{name}={raw.get(str(first['loc'][0]))!r}: {first['msg']}") from None
