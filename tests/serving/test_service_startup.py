"""The service refuses to start, saying what to do, when the model is missing or is not the file dvc.lock records."""

from __future__ import annotations

import re
import shutil
import urllib.request
from pathlib import Path

import pytest

from mltemplate.report.loadtest import LoadTestError, served
from tests.serving.test_settings import SERVICE_LINKS

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(pipeline_repo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pipeline_repo, tmp_path / "repo", symlinks=True))


def _start_failure(repo: Path, **env: str) -> str:
    """What `served` reports when `bentoml serve` exits instead of becoming ready."""
    with pytest.raises(LoadTestError, match="bentoml serve: exited with") as caught, served(repo, env=env, timeout=90):
        pass
    return str(caught.value)


def test_refuses_to_start_without_a_model(repo: Path) -> None:
    shutil.rmtree(repo / "models")
    assert "no trained model at models/model.skops: run `make run` first" in _start_failure(repo, SERVE_WORKERS="1")


def test_refuses_a_model_that_dvc_lock_does_not_record(repo: Path) -> None:
    lock = repo / "dvc.lock"
    text = lock.read_text()
    recorded = re.search(r"path: models/model.skops\n\s+hash: md5\n\s+md5: (\w+)", text)
    assert recorded is not None
    lock.write_text(text.replace(recorded[1], "f" * 32))
    message = _start_failure(repo, SERVE_WORKERS="1")
    assert f"is not the model dvc.lock records (md5 {'f' * 32}): run `make run`" in message


def test_refuses_bad_serving_settings_naming_the_variable(repo: Path) -> None:
    assert "SERVE_MAX_ROWS='lots'" in _start_failure(repo, SERVE_MAX_ROWS="lots")


def test_starts_beside_a_kubernetes_service_named_serve(repo: Path) -> None:
    """Kubernetes injects these into every pod of a namespace with a Service `serve` (enableServiceLinks defaults
    to true): they share the SERVE_ prefix of the settings and must not stop the service from starting."""
    links = SERVICE_LINKS
    with (
        served(repo, env={**links, "SERVE_WORKERS": "1"}, timeout=90) as base,
        urllib.request.urlopen(f"{base}/readyz", timeout=10) as response,  # noqa: S310 (loopback URL)
    ):
        assert response.status == 200
