"""card.py: the model card (release notes) from fixed inputs, and `python -m mltemplate.release.card` on real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mltemplate.comparison import Comparison, Difference, unavailable
from mltemplate.identity import Release
from mltemplate.metrics import METRICS as TASK_METRICS
from mltemplate.model_metadata import ModelMetadata
from mltemplate.params import EvaluateParams, Params
from mltemplate.release import card, comparison
from tests.conftest import DESCRIPTION

REL = Release.model_construct(
    version="2026.11.23-203152-667333a",
    git_commit="667333aeac87dc09ad2be003a1cab49940103c7b",
    model_md5="acafe47e2aaee9af6bf6aca34d38e52d",
    data_md5="e9b944627d1dedf79eccded14bf80881",
    mlflow_run_id=None,
    trained_at="2026-11-23T20:40:28+00:00",
    built_at="2026-11-23T20:41:31+00:00",
)
METADATA = ModelMetadata.model_validate(
    {
        **DESCRIPTION,
        "classes": ["benign", "malignant"],
        "data": {"path": "data/raw/x.csv", "md5": "e9b9", "train_rows": 426},
        "schema": {"numeric": ["a", "b", "c"], "categorical": ["site"], "target": "y", "positive_class": "benign"},
        "model_md5": "acafe47e2aaee9af6bf6aca34d38e52d",
    }
)
METRICS = {"accuracy": 0.965, "recall": 0.88, "log_loss": 0.0776, "support": {"benign": 90, "malignant": 53}}


@pytest.fixture
def text(params: Params) -> str:
    judged = params.model_copy(update={"evaluate": EvaluateParams(thresholds={"accuracy": 0.9, "recall": 0.9})})
    return card.render(REL, METADATA, METRICS, judged)


def test_card_names_version_commit_and_data_hash(text: str, params: Params) -> None:
    assert text.startswith(f"# {params.name} 2026.11.23-203152-667333a\n")
    assert f"| Git commit | `{REL.git_commit}` |" in text
    assert "| Data | `data/raw/x.csv` (md5 `e9b944627d1dedf79eccded14bf80881`) |" in text
    assert "| MLflow run | `none (no tracking server)` |" in text


def test_card_names_the_registered_version_and_the_model_key(params: Params) -> None:
    keyed = Release.model_construct(**{**REL.model_dump(), "registry_version": "7", "model_key": "0123456789abcdef"})
    text = card.render(keyed, METADATA, METRICS, params)
    assert "| Registered model version | `7` |" in text
    assert "| Model key (model, data and params) | `0123456789abcdef` |" in text


def test_card_lists_the_chosen_estimator_and_its_hyperparameters(text: str, params: Params) -> None:
    assert f"| `model.estimator` | `{params.model.estimator}` |" in text
    for key, value in params.model.selected.items():
        assert f"| `model.hyperparameters.{key}` | `{value}` |" in text
    others = {k for name, hp in params.model.hyperparameters.items() if name != params.model.estimator for k in hp}
    for key in others - set(params.model.selected):
        assert f"`model.hyperparameters.{key}`" not in text  # only the chosen estimator's


def test_card_checks_metrics_against_thresholds(text: str) -> None:
    assert "| `accuracy` | 0.9650 | ≥ 0.9000 ✅ |" in text
    assert "| `recall` | 0.8800 | ≥ 0.9000 ❌ |" in text
    assert "| `log_loss` | 0.0776 |  |" in text


def test_card_states_intended_use_and_limitations_from_the_data(text: str) -> None:
    assert "## Intended use" in text
    assert "4 input columns" in text
    assert "`y` is `benign`" in text  # target and positive class of the model, from its metadata
    assert "Trained on 426 rows and evaluated on 143 held-out rows" in text


@pytest.mark.integration
def test_card_command_writes_the_card_from_the_pipeline_outputs(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for name in ("params.yaml", "metrics.json", "models/metadata.json"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pipeline_repo / name, repo / name)
    command = [sys.executable, "-m", "mltemplate.release.card"]
    missing = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    assert missing.returncode == 1
    assert "models/release.json not found: run `make bento` first" in missing.stderr

    (repo / "models" / "release.json").write_text(json.dumps(REL.to_dict()))
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = (repo / "build" / "model-card.md").read_text(encoding="utf-8")
    metrics = json.loads((pipeline_repo / "metrics.json").read_text())
    task = yaml.safe_load((repo / "params.yaml").read_text())["data"]["task"]
    for metric in TASK_METRICS[task]:  # every metric of the project's task that evaluate wrote (mape may be left out)
        if metric.name in metrics:
            assert f"| `{metric.name}` | {metrics[metric.name]:.4f} |" in written


REGRESSION = ModelMetadata.model_validate(
    {
        **METADATA.model_dump(by_alias=True),
        "classes": [],
        "schema": {
            "numeric": ["a", "b"],
            "categorical": ["sex"],
            "target": "price",
            "positive_class": None,
            "task": "regression",
        },
    }
)
REGRESSION_METRICS = {
    "rmse": 4.5,
    "r2": 0.61,
    "slices": {"sex": {"F": {"rmse": 4.0, "r2": 0.7}, "M": {"rmse": 5.0, "r2": 0.5}}},
    "slice_gap": {"sex": {"rmse": 1.0, "r2": 0.2}},
}


@pytest.fixture
def regression_text(params: Params) -> str:
    raw = params.model_dump(mode="json")
    raw["data"] = {**raw["data"], "task": "regression", "positive_class": None}
    raw["model"] = {"estimator": "ridge", "hyperparameters": {}}
    raw["evaluate"] = {"thresholds": {"rmse": 5.0, "r2": 0.7}, "slices": ["sex"], "max_slice_gap": {"rmse": 0.5}}
    raw["monitor"] = {
        **raw.get("monitor", {}),
        "thresholds": {},
    }  # the binary metrics it names are not metrics of this task
    importance = [{"feature": "a", "importance": 3.2, "std": 0.4}, {"feature": "b", "importance": 0.01, "std": 0.02}]
    return card.render(REL, REGRESSION, REGRESSION_METRICS, Params.model_validate(raw), importance)


def test_a_regression_card_reads_thresholds_in_each_metrics_direction(regression_text: str) -> None:
    assert "A regression model of `price`" in regression_text
    assert "| `rmse` | 4.5000 | ≤ 5.0000 ✅ |" in regression_text
    assert "| `r2` | 0.6100 | ≥ 0.7000 ❌ |" in regression_text


def test_the_card_shows_permutation_importance_most_important_first(regression_text: str) -> None:
    section = regression_text.split("## What drives it")[1].split("##")[0]
    assert section.index("| `a` | 3.2000 | 0.4000 |") < section.index("| `b` | 0.0100 | 0.0200 |")


def test_the_card_shows_per_group_metrics_and_the_gap_against_its_limit(regression_text: str) -> None:
    section = regression_text.split("## Per-group metrics")[1].split("## Intended use")[0]
    assert "| `F` | 4.0000 | 0.7000 |" in section
    assert "| **largest gap** | 1.0000 ❌ | 0.2000 |" in section
    assert "slices.sex" not in regression_text.split("## Per-group metrics")[0]  # not repeated as metric rows


PRODUCTION = "2026.11.01-101010-1234567"


def production_section(params: Params, production: comparison.AgainstProduction | None) -> str:
    text = card.render(REL, METADATA, METRICS, params, production=production)
    return text.split("## Compared with the model in production")[1].split("\n## ")[0] if production else text


def test_the_card_of_a_first_release_says_nothing_was_in_production(params: Params) -> None:
    section = production_section(params, comparison.nothing_in_production())
    assert section.strip() == "No release was in production: this is the first."


def test_the_card_says_why_production_was_not_compared(params: Params) -> None:
    reason = "the production model could not be had: `dvc repro train` at 1234567 failed"
    found = comparison.AgainstProduction(PRODUCTION, "1234567", "", unavailable(reason))
    assert production_section(params, found).strip() == f"Not compared with production `{PRODUCTION}`: {reason}."


def test_the_card_shows_the_comparison_with_production_as_a_table(params: Params) -> None:
    differences = (Difference("accuracy", 0.9, 0.91, -0.01, 0.03), Difference("log_loss", 0.2, 0.3, 0.05, 0.15))
    compared = Comparison(rows=143, differences=differences, resamples=1000, notes=("a seeded sample",))
    found = comparison.AgainstProduction(PRODUCTION, "1234567", "from the DVC cache or remote", compared)
    section = production_section(params, found)
    assert (
        f"Against release `{PRODUCTION}` (its model from the DVC cache or remote), on the 143 held-out rows" in section
    )
    assert "with 95% confidence (a paired bootstrap, 1000 seeded resamples)" in section
    assert "| Metric | Production | This release | Difference | 95% interval | Verdict |" in section
    assert "| `accuracy` | 0.9000 | 0.9100 | +0.0100 | [-0.0100, +0.0300] | no measurable difference |" in section
    assert "| `log_loss` | 0.2000 | 0.3000 | +0.1000 | [+0.0500, +0.1500] | worse |" in section
    assert "- a seeded sample" in section


def test_the_card_without_a_comparison_has_no_production_section(text: str) -> None:
    assert "Compared with the model in production" not in text
