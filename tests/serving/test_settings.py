"""Runtime settings of the service come from SERVE_* variables and fail naming the variable."""

from __future__ import annotations

import pytest

from mltemplate.serving.settings import ServingSettings, SettingsError, load_settings


def test_defaults_without_variables() -> None:
    assert load_settings({}) == ServingSettings()
    assert ServingSettings().max_body_bytes <= 10 * 2**20


def test_variables_override_defaults() -> None:
    settings = load_settings({"SERVE_WORKERS": "3", "SERVE_TIMEOUT_S": "0.5", "SERVE_BATCHING": "false", "PATH": "/x"})
    assert (settings.workers, settings.timeout_s, settings.batching) == (3, 0.5, False)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SERVE_WORKERS", "0"), ("SERVE_MAX_ROWS", "many"), ("SERVE_MAX_BODY_BYTES", str(11 * 2**20))],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{variable}='{value}': "):
        load_settings({variable: value})


def test_unknown_variable_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting SERVE_WORKER;.*SERVE_WORKERS"):
        load_settings({"SERVE_WORKER": "2"})


def test_a_body_budget_below_the_largest_body_is_refused_naming_both() -> None:
    with pytest.raises(SettingsError, match=r"^SERVE_MAX_INFLIGHT_BODY_BYTES=2000 is below SERVE_MAX_BODY_BYTES=4000"):
        load_settings({"SERVE_MAX_INFLIGHT_BODY_BYTES": "2000", "SERVE_MAX_BODY_BYTES": "4000"})
