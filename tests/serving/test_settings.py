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


# What Kubernetes sets in every pod of a namespace that has a Service named `serve` (port 3000, named `http`).
SERVICE_LINKS = {
    "SERVE_SERVICE_HOST": "10.0.0.1",
    "SERVE_SERVICE_PORT": "3000",
    "SERVE_SERVICE_PORT_HTTP": "3000",
    "SERVE_PORT": "tcp://10.0.0.1:3000",
    "SERVE_PORT_3000_TCP": "tcp://10.0.0.1:3000",
    "SERVE_PORT_3000_TCP_PROTO": "tcp",
    "SERVE_PORT_3000_TCP_PORT": "3000",
    "SERVE_PORT_3000_TCP_ADDR": "10.0.0.1",
}


@pytest.mark.parametrize(
    "links",
    [
        SERVICE_LINKS,
        {"SERVE_CANARY_SERVICE_HOST": "fd00::1", "SERVE_CANARY_PORT": "tcp://[fd00::1]:80"},
        {"SERVE_PORT_53_UDP": "udp://10.0.0.2:53", "SERVE_PORT_53_UDP_PROTO": "udp"},
    ],
    ids=["serve", "serve-canary-ipv6", "udp"],
)
def test_kubernetes_service_links_are_not_settings(links: dict[str, str]) -> None:
    assert load_settings({**links, "SERVE_WORKERS": "3"}) == ServingSettings(workers=3)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SERVE_WORKRES", "2"),
        ("SERVE_PORT", "8080"),  # looks like a setting, but the port comes from --port / PORT
        ("SERVE_SERVICE_HOST", "not a host"),
        ("SERVE_PORT_3000_TCP_PROTO", "http"),
        ("SERVE_MAX_ROWS_TCP", "tcp://10.0.0.1:3000"),
    ],
)
def test_a_service_link_shape_does_not_hide_a_mistyped_setting(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=rf"unknown setting {variable};"):
        load_settings({**SERVICE_LINKS, variable: value})


def test_a_body_budget_below_the_largest_body_is_refused_naming_both() -> None:
    with pytest.raises(SettingsError, match=r"^SERVE_MAX_INFLIGHT_BODY_BYTES=2000 is below SERVE_MAX_BODY_BYTES=4000"):
        load_settings({"SERVE_MAX_INFLIGHT_BODY_BYTES": "2000", "SERVE_MAX_BODY_BYTES": "4000"})


def test_a_feedback_token_and_a_token_file_together_are_refused() -> None:
    with pytest.raises(SettingsError, match="set SERVE_FEEDBACK_TOKEN or SERVE_FEEDBACK_TOKEN_FILE, not both"):
        load_settings({"SERVE_FEEDBACK_TOKEN": "x" * 20, "SERVE_FEEDBACK_TOKEN_FILE": "/run/token"})
