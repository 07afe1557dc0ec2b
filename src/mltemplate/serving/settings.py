"""Runtime settings of the prediction service, read from environment variables (never from params.yaml)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from mltemplate.errors import Error

PREFIX = "SERVE_"

# Kubernetes gives every pod variables for each Service of its namespace (unless the pod sets enableServiceLinks:
# false): a Service named `serve` or `serve-...` yields SERVE_SERVICE_HOST=10.0.0.1, SERVE_PORT=tcp://10.0.0.1:3000,
# SERVE_PORT_3000_TCP_PROTO=tcp, ... These are not settings; each is recognised by its name AND its value's shape, so
# that a mistyped setting (SERVE_WORKRES=2) or one that is not a setting (SERVE_PORT=8080) is still refused.
_SERVICE = r"SERVE(?:_[A-Z0-9]+)*"  # the Service name, capitalised, "-" -> "_"
_LINK = r"_PORT_\d{1,5}_(?:TCP|UDP|SCTP)"
_HOST = r"[0-9A-Fa-f.:]+"  # IPv4 or IPv6 address
_PORT = r"\d{1,5}"
_URL = rf"(?:tcp|udp|sctp)://(?:[0-9.]+|\[[0-9A-Fa-f:.]+\]):{_PORT}"
SERVICE_LINKS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (re.compile(_SERVICE + name), re.compile(value))
    for name, value in (
        ("_SERVICE_HOST", _HOST),
        ("_SERVICE_PORT(?:_[A-Z0-9_]+)?", _PORT),  # with a suffix: a named port
        (f"(?:_PORT|{_LINK})", _URL),
        (f"{_LINK}_PROTO", "tcp|udp|sctp"),
        (f"{_LINK}_PORT", _PORT),
        (f"{_LINK}_ADDR", _HOST),
    )
)


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
    max_inflight_body_bytes: int = Field(
        default=64 * 2**20,
        ge=1024,
        description="Body bytes in progress per worker (the memory budget); more get 503 with Retry-After. "
        "At least max_body_bytes.",
    )
    max_concurrency: int = Field(
        default=256, ge=1, description="Requests in progress per service; more get 429 with Retry-After."
    )
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="Time to answer before 504.")
    body_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="Time for a body to arrive once its headers have; slower ones get 408. At or above timeout_s "
        "the request's 504 comes first.",
    )
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
    feedback_token: SecretStr | None = Field(
        default=None, description="POST /feedback credentials: `name:token` or a bare token, several comma-separated."
    )
    feedback_token_file: Path | None = Field(
        default=None, description="A file of feedback credentials, one per line (a Kubernetes Secret, mounted)."
    )
    feedback_rate: float = Field(
        default=1000.0, gt=0, description="Labels a second each feedback credential may send, per worker (429 past it)."
    )
    feedback_burst: int = Field(default=10_000, ge=1, description="Labels a credential may send at once, per worker.")
    max_inflight_labels: int = Field(
        default=4000,
        ge=1,
        description="Labels being stored at once per worker, all POST /feedback calls together; a call past it gets "
        "429 with Retry-After (a call is always taken when none is in progress).",
    )

    @model_validator(mode="after")
    def _one_source_of_credentials(self) -> ServingSettings:
        if self.feedback_token is not None and self.feedback_token_file is not None:
            raise ValueError(f"set {PREFIX}FEEDBACK_TOKEN or {PREFIX}FEEDBACK_TOKEN_FILE, not both")
        return self

    log_db_timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="Statement, lock and busy timeout of the prediction log's writes."
    )
    log_queue_records: int = Field(
        default=100_000,
        ge=1,
        description="Records a worker keeps in memory while neither the database nor the spool takes them; "
        "beyond it they are dropped (counted on /metrics).",
    )
    spool_max_bytes: int = Field(
        default=192 * 2**20,
        ge=2**20,
        description="Disk the prediction log's spool may fill (all workers together) while the database refuses.",
    )
    debug_refusals: bool = Field(
        default=False,
        description="Log refused requests' messages and BentoML's tracebacks, which can hold the client's values.",
    )

    @model_validator(mode="after")
    def _budget_holds_one_body(self) -> ServingSettings:
        if self.max_inflight_body_bytes < self.max_body_bytes:
            raise ValueError(
                f"{PREFIX}MAX_INFLIGHT_BODY_BYTES={self.max_inflight_body_bytes} is below "
                f"{PREFIX}MAX_BODY_BYTES={self.max_body_bytes}: the largest allowed body could never be admitted"
            )
        return self


def is_service_link(name: str, value: str) -> bool:
    """Whether NAME=VALUE is a variable Kubernetes sets for a Service whose name begins with `serve`."""
    return any(names.fullmatch(name) and values.fullmatch(value) for names, values in SERVICE_LINKS)


def load_settings(environ: Mapping[str, str] | None = None) -> ServingSettings:
    """Settings from SERVE_* variables; SettingsError names the variable and the rule it breaks."""
    environ = os.environ if environ is None else environ
    raw = {
        name: environ[f"{PREFIX}{name.upper()}"]
        for name in ServingSettings.model_fields
        if f"{PREFIX}{name.upper()}" in environ
    }
    unknown = sorted(
        key
        for key, value in environ.items()
        if key.startswith(PREFIX) and key.removeprefix(PREFIX).lower() not in raw and not is_service_link(key, value)
    )
    if unknown:
        allowed = [f"{PREFIX}{name.upper()}" for name in ServingSettings.model_fields]
        raise SettingsError(f"unknown setting {unknown[0]}; the service reads {allowed}")
    try:
        return ServingSettings.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        if not first["loc"]:  # a rule across settings: its message names them
            raise SettingsError(str(first["msg"]).removeprefix("Value error, ")) from None
        name = f"{PREFIX}{str(first['loc'][0]).upper()}"
        raise SettingsError(f"{name}={raw.get(str(first['loc'][0]))!r}: {first['msg']}") from None
