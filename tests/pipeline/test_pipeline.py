"""The real `dvc repro` in temporary copies of this repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mltemplate.metrics import METRICS, read_metrics
from mltemplate.model_metadata import read_model_metadata
from mltemplate.params import load_params
from tests.conftest import copy_repo, nudged_hyperparameter, run, subprocess_env

pytestmark = pytest.mark.integration

TRACKED_OUTPUTS = ["dvc.lock", "metrics.json", "plots"]


def clone(source: Path, dest: Path) -> Path:
    """A full copy: git history, DVC cache, outputs and MLflow store."""
    shutil.copytree(source, dest, symlinks=True)
    return dest


def edit_params(repo: Path, **changes: object) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = params
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def test_fresh_repro_reproduces_the_committed_outputs(pipeline_repo: Path) -> None:
    changed = run(["git", "status", "--porcelain", "--untracked-files=no", "--", *TRACKED_OUTPUTS], cwd=pipeline_repo)
    assert changed.stdout == "", f"a fresh `dvc repro` changed committed outputs:\n{changed.stdout}"
    status = run(["dvc", "status", "--json"], cwd=pipeline_repo)
    assert json.loads(status.stdout) == {}


def test_second_repro_runs_nothing(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = clone(pipeline_repo, tmp_path / "repo")
    result = run(["dvc", "repro"], cwd=repo)
    assert stages_run(result.stdout) == []


def test_hyperparameter_change_reruns_only_train_and_evaluate(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = clone(pipeline_repo, tmp_path / "repo")
    key, value = nudged_hyperparameter(load_params(repo / "params.yaml"))
    before = json.loads((repo / "metrics.json").read_text())
    result = run(["dvc", "exp", "run", "-S", f"{key}={value}"], cwd=repo)
    assert stages_run(result.stdout) == ["train", "evaluate"]
    after = json.loads((repo / "metrics.json").read_text())
    assert after != before  # the model was refitted with the new value and scored again
    shown = run(["dvc", "exp", "show", "--json"], cwd=repo)
    assert str(value) in shown.stdout


def test_bad_csv_fails_prepare_naming_the_column_and_keeps_outputs(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = clone(pipeline_repo, tmp_path / "repo")
    params = load_params(repo / "params.yaml")
    column = read_model_metadata(repo / "models/metadata.json").input_schema.numeric[0]
    raw = repo / params.data.raw
    frame = pd.read_csv(raw)
    frame[column] = frame[column].astype(object)
    frame.loc[10, column] = "n/a?"
    raw.write_text(frame.to_csv(index=False))
    before = (repo / "data/prepared/train.csv").read_bytes()
    result = subprocess.run(["dvc", "repro"], cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode != 0
    assert f"column {column!r}: value 'n/a?' on data row 11 is not a finite number" in result.stderr
    assert (repo / "data/prepared/train.csv").read_bytes() == before


def test_bad_params_fail_naming_the_key_and_keep_the_model(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = clone(pipeline_repo, tmp_path / "repo")
    model_before = (repo / "models/model.skops").read_bytes()
    lock_before = (repo / "dvc.lock").read_text()
    estimator = load_params(repo / "params.yaml").model.estimator
    edit_params(repo, **{f"model__hyperparameters__{estimator}__no_such_parameter": "many"})
    result = subprocess.run(["dvc", "repro"], cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode != 0
    assert f"error: params.yaml: model.hyperparameters.{estimator}.no_such_parameter: " in result.stderr
    assert (repo / "models/model.skops").read_bytes() == model_before
    assert (repo / "dvc.lock").read_text() == lock_before


def test_gate_fails_with_the_metric_and_the_gap(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = clone(pipeline_repo, tmp_path / "repo")
    scored = read_metrics(repo / "metrics.json")
    # A floor of the project's task between what its model scores and 1 (every floor metric is at most 1).
    task = load_params(repo / "params.yaml").data.task
    metric, value = next((m.name, scored[m.name]) for m in METRICS[task] if m.higher_is_better and scored[m.name] < 1)
    floor = round((value + 1) / 2, 4)
    edit_params(repo, evaluate__thresholds={metric: floor})
    result = subprocess.run(
        ["python", "-m", "mltemplate.gate"], cwd=repo, env=subprocess_env(), capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"error: {metric} {value:.4f} is below its threshold {floor:.4f} by {floor - value:.4f}" in result.stderr


def write_other_dataset(path: Path) -> None:
    """A different task: other column names, a categorical column, missing values, 0/1 labels."""
    rng = np.random.default_rng(11)
    n = 400
    frame = pd.DataFrame(
        {
            "patient_id": np.arange(n),
            "age_years": rng.integers(20, 90, n),
            "bmi": rng.normal(27, 4, n).round(1),
            "smoker": rng.choice(["yes", "no", "former"], n),
        }
    )
    risk = 0.04 * (frame["age_years"] - 55) + 0.15 * (frame["bmi"] - 27) + 1.2 * (frame["smoker"] == "yes")
    frame["readmitted"] = (risk + rng.normal(0, 1, n) > 0.3).astype(int)
    frame.loc[rng.choice(n, 25, replace=False), "bmi"] = np.nan
    frame.loc[rng.choice(n, 10, replace=False), "smoker"] = np.nan
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(frame.to_csv(index=False))


def test_pipeline_runs_on_another_csv_by_changing_only_data_and_params(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    (repo / load_params(repo / "params.yaml").data.raw).unlink(missing_ok=True)
    write_other_dataset(repo / "data/raw/readmissions.csv")
    run(["python", "-m", "mltemplate.pipeline.data", "track", "data/raw/readmissions.csv"], cwd=repo)
    edit_params(
        repo,
        name="readmission-risk",
        data__raw="data/raw/readmissions.csv",
        data__target="readmitted",
        data__task="binary",
        data__positive_class=1,
        data__features=None,
        data__categorical=["smoker"],
        data__drop=["patient_id"],
        # Everything else that names the task's estimators or metrics, whichever task the project had.
        model__estimator="hist_gradient_boosting",
        model__hyperparameters={"hist_gradient_boosting": {"max_iter": 100}},
        evaluate__thresholds={"roc_auc": 0.6},
        evaluate__slices=[],
        evaluate__max_slice_gap={},
        monitor__thresholds={"roc_auc": 0.6},
    )
    run(["python", "-m", "mltemplate.pipeline.data"], cwd=repo)
    run(["dvc", "repro"], cwd=repo)
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["roc_auc"] > 0.6
    assert set(metrics["support"]) == {"0", "1"}
    metadata = json.loads((repo / "models/metadata.json").read_text())
    assert metadata["schema"] == {
        "numeric": ["age_years", "bmi"],
        "categorical": ["smoker"],
        "target": "readmitted",
        "positive_class": "1",
    }
    run(["python", "-m", "mltemplate.gate"], cwd=repo)
    assert json.loads(run(["dvc", "status", "--json"], cwd=repo).stdout) == {}


@pytest.mark.parametrize("coretype", ["Haswell", "Sandybridge"])
def test_check_lock_passes_with_another_blas_kernel(tmp_path: Path, coretype: str) -> None:
    # The release's first step, in a fresh copy, as on a CPU whose OpenBLAS kernel differs from the one that
    # wrote dvc.lock. `-o .venv/.synced` and `RUN=`: this test's environment instead of a new one in the copy.
    repo = copy_repo(tmp_path / "repo")
    result = run(["make", "-o", ".venv/.synced", "check-lock", "RUN="], cwd=repo, OPENBLAS_CORETYPE=coretype)
    assert "train" in stages_run(result.stdout)  # the model was refitted with this kernel
    assert "check-lock: dvc.lock, metrics.json and plots/ match" in result.stdout
