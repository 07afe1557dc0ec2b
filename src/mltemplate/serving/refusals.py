"""How refused requests are logged: once per request, at INFO (the client's fault) or WARNING (the server is busy),
with the field and a reason but never the client's values, and BentoML's own ERROR line with a traceback (whose
validation error lists the input) kept for real errors only. `SERVE_DEBUG_REFUSALS=true` puts the messages back."""

from __future__ import annotations

import logging
from collections.abc import Collection

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

logger = logging.getLogger("mltemplate.serving.refusals")

BENTOML_ERRORS = "bentoml._internal.server.http_app"
"""The logger of BentoML's log_exception: every exception an API raised, at ERROR, with its traceback."""
BUSY = frozenset({429, 503, 504})
MAX_FIELD_CHARS = 120
MAX_REASON_CHARS = 200
UNKNOWN_NAME = "<unknown>"
OWN_FIELDS = frozenset({"body", "records", "X-Request-ID", "Content-Type", "Content-Length"})
"""The fields the guard itself names in its refusals."""

PACKAGE = __name__.split(".")[0]
"""The package's top logger (its name is the project's: `make init` renames the package)."""


class RefusalLog:
    """Writes the one line of each refused request. Field names that are not the service's own (an unknown key a
    client sent may itself be a value) are logged as <unknown>."""

    def __init__(self, known: Collection[str] = (), *, values: bool = False) -> None:
        self.known = OWN_FIELDS | frozenset(known)
        self.values = values

    def field(self, field: str) -> str:
        parts = field.split(".")
        safe = [part if part.isdigit() or part in self.known else UNKNOWN_NAME for part in parts]
        return ".".join(safe)[:MAX_FIELD_CHARS]

    def refused(
        self, method: str, path: str, status: int, *, field: str | None, reason: str, message: str = ""
    ) -> None:
        """`reason` is ours (a pydantic error type, a limit's name); `message` may hold values and is logged only
        when debugging."""
        level = logging.WARNING if status in BUSY else logging.INFO
        if not logger.isEnabledFor(level):
            return
        where = self.field(field) if field else "-"
        extra = f": {message[:MAX_REASON_CHARS]}" if self.values and message else ""
        logger.log(level, "refused %s %s %d %s (%s)%s", method, path, status, where, reason[:MAX_REASON_CHARS], extra)


class ClientErrors(logging.Filter):
    """Drops BentoML's ERROR line for what is not the server's error: a request that failed validation (400; its
    traceback holds the input) or a refusal for overload (503). The guard has logged those already."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            return False
        if isinstance(error, BentoMLException):
            status = int(error.error_code)
            return status >= 500 and status != 503
        return True


def install(*, values: bool) -> None:
    """At worker start: our refusal lines at INFO; BentoML's tracebacks of refusals kept only when debugging."""
    logging.getLogger(PACKAGE).setLevel(logging.INFO)
    bentoml_errors = logging.getLogger(BENTOML_ERRORS)
    for existing in [f for f in bentoml_errors.filters if isinstance(f, ClientErrors)]:
        bentoml_errors.removeFilter(existing)
    if not values:
        bentoml_errors.addFilter(ClientErrors())
