"""One gate: every consumer of a verdict (`make gate`, the PR report and its trusted comment, `make publish`, the
model card and the monitor's quality check) is given the same metrics, with a ceiling metric and a slice gap past
their limits, and reaches the same verdict through mltemplate.gate."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltemplate import gate
from mltemplate.errors import CommandError
from mltemplate.identity import Release
from mltemplate.model_metadata import ModelMetadata
from mltemplate.monitoring.quality import quality_checks
from mltemplate.params import Params, parse_params
from mltemplate.release import card, comparison, publish
from mltemplate.report.schema import Report, Side
from mltemplate.report.verdict import judge_report
from tests.conftest import DESCRIPTION, ROOT

pytestmark = pytest.mark.project  # starts from this project's params.yaml

METRICS: dict[str, Any] = {
    "rmse": 5.5,
    "mae": 3.0,
    "r2": 0.6,
    "slices": {"region": {"north": {"rmse": 4.5}, "south": {"rmse": 6.5}}},
    "slice_gap": {"region": {"rmse": 2.0}},
}
FAILED = {"rmse", "slice_gap.region.rmse"}


def regression_params() -> Params:
    """The repository's params.yaml turned into a regression task with a ceiling and a slice-gap limit."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["data"] = {**raw["data"], "task": "regression", "target": "y", "positive_class": None}
    raw["data"].pop("positive_class")
    raw["model"] = {"estimator": "ridge", "hyperparameters": {}}
    raw["evaluate"] = {
        "thresholds": {"rmse": 5.0, "r2": 0.5},
        "slices": ["region"],
        "max_slice_gap": {"rmse": 1.0},
        "tolerance": 0.0,
    }
    raw["monitor"] = {**raw.get("monitor", {}), "thresholds": {"rmse": 5.0, "r2": 0.5}}
    return parse_params(raw)


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Params]:
    """A working directory with that params.yaml, METRICS as metrics.json, and no release in production yet."""
    params = regression_params()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")), encoding="utf-8")
    (tmp_path / "metrics.json").write_text(json.dumps(METRICS), encoding="utf-8")
    comparison.write(comparison.nothing_in_production(), tmp_path / comparison.COMPARISON_FILE)
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield params
    finally:
        os.chdir(old)


def named(text: str) -> set[str]:
    return {name for name in ("rmse", "slice_gap.region.rmse", "r2", "mae") if f"{name} " in text}


def test_the_gate_itself_fails_the_ceiling_and_the_slice_gap(checkout: Params) -> None:
    verdict = gate.judge(METRICS, checkout.evaluate)
    assert {c.metric for c in verdict.failed} == FAILED


def test_make_gate_reaches_the_same_verdict(checkout: Params, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CommandError) as raised:
        gate.main()
    assert named(str(raised.value)) == FAILED
    assert "rmse         5.5000  <= 5.0000  FAIL" in capsys.readouterr().out


def test_make_publish_reaches_the_same_verdict(checkout: Params) -> None:
    with pytest.raises(CommandError, match="nothing is published") as raised:
        publish.check_gate({publish.FORCE_REASON: "a threshold is never forced past"})
    assert named(str(raised.value)) == FAILED
    assert "<" not in str(raised.value).replace("<=", "")


def test_the_report_and_the_trusted_comment_reach_the_same_verdict(checkout: Params) -> None:
    flat = {"rmse": 5.5, "mae": 3.0, "r2": 0.6, "slice_gap.region.rmse": 2.0}
    found = Report(base_ref="main", base=Side(label="main"), pr=Side(label="PR", metrics=flat))
    verdict = judge_report(found, policy=checkout.evaluate, source="trusted")
    assert verdict.verdict is not None
    assert {c.metric for c in verdict.verdict.failed} == FAILED
    assert named(" ".join(verdict.failures())) == FAILED
    assert verdict.status()["state"] == "failure"


def test_the_model_card_marks_the_same_metrics(checkout: Params) -> None:
    metadata = ModelMetadata.model_validate(
        {
            **DESCRIPTION,
            "estimator": "ridge",
            "classes": [],
            "schema": {
                "numeric": ["a"],
                "categorical": [],
                "target": "y",
                "positive_class": None,
                "task": "regression",
            },
            "model_md5": "0" * 32,
        }
    )
    release = Release.model_construct(
        version="v", git_commit="c", model_md5="0" * 32, data_md5="d", mlflow_run_id=None, trained_at="", built_at=""
    )
    text = card.render(release, metadata, METRICS, checkout)
    assert "| `rmse` | 5.5000 | ≤ 5.0000 ❌ |" in text
    assert "| `r2` | 0.6000 | ≥ 0.5000 ✅ |" in text
    assert "| **largest gap** | 2.0000 ❌ |" in text


def test_the_monitor_breaches_the_same_threshold(checkout: Params) -> None:
    checks = quality_checks({"rmse": 5.5, "r2": 0.6}, checkout.monitor.thresholds)
    assert {c.name for c in checks if c.breached} == {"rmse"}
    assert {c.method for c in checks} == {"ceiling", "floor"}
