"""Refusals are logged once, at INFO or WARNING, with the field and a reason but not the client's values; BentoML's
ERROR line with a traceback is kept only for real errors."""

from __future__ import annotations

import logging

import pytest
from bentoml.exceptions import InternalServerError, ServiceUnavailable
from pydantic import BaseModel, ValidationError

from mltemplate.serving.refusals import PACKAGE, ClientErrors, RefusalLog


def test_field_names_that_are_not_the_services_are_not_logged() -> None:
    log = RefusalLog({"mean_radius"})
    assert log.field("records.3.mean_radius") == "records.3.mean_radius"
    assert log.field("records.3.4111 1111 1111 1111") == "records.3.<unknown>"
    assert log.field("X-Request-ID") == "X-Request-ID"
    assert len(log.field("records." + "9" * 10_000)) <= 120


@pytest.mark.parametrize(("status", "level"), [(400, logging.INFO), (413, logging.INFO), (429, logging.WARNING)])
def test_one_line_at_info_for_the_clients_fault_and_warning_for_overload(
    caplog: pytest.LogCaptureFixture, status: int, level: int
) -> None:
    caplog.set_level(logging.INFO, logger=PACKAGE)
    RefusalLog().refused("POST", "/predict", status, field="body", reason="limit", message="value 4111 1111 1111 1111")
    (record,) = caplog.records
    assert record.levelno == level
    assert "4111" not in record.getMessage()
    assert f"refused POST /predict {status} body (limit)" == record.getMessage()


def test_the_message_is_logged_only_when_debugging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=PACKAGE)
    RefusalLog(values=True).refused("POST", "/predict", 400, field="body", reason="json_invalid", message="at 'x'")
    assert caplog.records[0].getMessage().endswith(": at 'x'")


class _Model(BaseModel):
    x: int


def _record(error: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "bentoml", logging.ERROR, __file__, 1, "Exception on /predict", (), (type(error), error, None)
    )


def test_bentomls_traceback_is_dropped_for_validation_errors_and_overload_and_kept_for_real_errors() -> None:
    with pytest.raises(ValidationError) as invalid:
        _Model.model_validate({"x": "4111 1111 1111 1111"})
    keep = ClientErrors().filter
    assert not keep(_record(invalid.value))
    assert not keep(_record(ServiceUnavailable("overloaded")))
    assert keep(_record(InternalServerError("bug")))
    assert keep(_record(RuntimeError("bug")))
