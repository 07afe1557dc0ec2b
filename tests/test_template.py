"""The template keeps working when its users change it: other params, and their own data sets (categories, missing
values, string labels, half a million rows). Each case runs the README's make targets in a fresh copy: `make run`,
then commit, `make check-lock`, `make report` against main, and the real service with `make smoke`'s check."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mltemplate.estimators import task_estimators
from mltemplate.metrics import METRICS, Task
from mltemplate.model_metadata import read_model_metadata
from mltemplate.release import smoke
from mltemplate.report.loadtest import served
from tests.conftest import copy_repo, subprocess_env
from tests.service_client import json_records, post_json, request

pytestmark = [pytest.mark.integration, pytest.mark.template]


def make(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in `repo` with this session's environment (RUN= runs the tools from the venv on PATH)."""
    result = subprocess.run(["make", *args, "RUN="], cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 0, f"make {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


def set_params(repo: Path, changes: dict[str, Any]) -> None:
    """Set dotted keys of params.yaml (whole subtrees where the value is a mapping)."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = params
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def branch(tmp_path: Path, change: Callable[[Path], None]) -> Path:
    """A copy of this repository whose `main` is the template as it is, with `change` applied on branch `pr`."""
    repo = copy_repo(tmp_path / "repo")
    (repo / ".venv").mkdir(exist_ok=True)
    (repo / ".venv/.synced").touch()  # `make setup` is satisfied: the tools come from this session's venv
    git(repo, "checkout", "-q", "-b", "pr")
    change(repo)
    return repo


def run_as_a_user_would(repo: Path) -> dict[str, Any]:
    """make run; commit; make check-lock; make report against main; serve and smoke-test. Returns the metadata."""
    make(repo, "run")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pr: the user's change and its outputs")
    make(repo, "check-lock")
    judged = subprocess.run(
        ["make", "report", "BASE=main", "REPORT_FLAGS=--no-load", "RUN="],
        cwd=repo, env=subprocess_env(), capture_output=True, text=True,
    )  # fmt: skip
    report = (repo / "report/report.md").read_text()
    # The verdict is whatever the comparison honestly finds (a user's change may be worse than main): the report is
    # written either way, says which, and the command's status agrees with it.
    passed = "Quality gate passed" in report
    assert passed or "Quality gate failed" in report, report
    assert (judged.returncode == 0) == passed, judged.stdout[-3000:] + judged.stderr[-3000:]
    if not passed:
        assert "quality gate failed: " in judged.stdout + judged.stderr
    with served(repo, env={"SERVE_WORKERS": "1"}) as url:
        seen = smoke.check(url, example=repo / "examples/predict.json")
    assert seen["prediction"]["predictions"]
    return seen["metadata"]


def monitor_with_labels(repo: Path, thresholds: dict[str, float]) -> str:
    """Serve with the prediction log on (its default SQLite file), answer the held-out rows in one request, send
    their true labels to /feedback, then `make monitor` with `thresholds`: returns monitoring/report.md."""
    schema = read_model_metadata(repo / "models/metadata.json").input_schema
    test = pd.read_csv(repo / "data/prepared/test.csv")
    records = json_records(test[list(schema.features)])
    truth = test[schema.target].tolist() if not schema.classification else test[schema.target].astype(str).tolist()
    set_params(repo, {"monitor.thresholds": thresholds, "monitor.min_rows": 20, "monitor.min_labels": 20})
    token = "a-labeller-token-for-this-test"
    with served(repo, env={"SERVE_WORKERS": "1", "SERVE_FEEDBACK_TOKEN": token}) as url:
        reply = post_json(url, {"records": records})
        assert reply.status == 200, reply.text
        rid = reply.json()["request_id"]
        labels = {"labels": [{"request_id": rid, "position": i, "label": t} for i, t in enumerate(truth)]}
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        stored = request(url, "/feedback", body=json.dumps(labels).encode(), headers=headers)
        assert stored.status == 200, stored.text  # the service's own id: labelable the moment it is answered
    output = make(repo, "monitor").stdout
    assert f" logged records, {len(records)} labelled" in output, output  # earlier checks logged a few too
    return (repo / "monitoring/report.md").read_text()


PARAMS_CHANGES = {
    "random forest, other seed and split": {
        "seed": 7,
        "split.test_size": 0.3,
        "model.estimator": "random_forest",
        "model.hyperparameters.random_forest": {"n_estimators": 40, "max_depth": 4, "min_samples_leaf": 3, "n_jobs": 1},
        "evaluate.tolerance": 0.5,
    },
    "gradient boosting, other thresholds": {
        "seed": 3,
        "split.test_size": 0.2,
        "model.estimator": "hist_gradient_boosting",
        "model.hyperparameters.hist_gradient_boosting": {"learning_rate": 0.05, "max_iter": 60, "max_leaf_nodes": 15},
        "evaluate.tolerance": 0.5,
    },
}


def lenient_thresholds(task: Task) -> dict[str, float]:
    """Floors on the project's task's first two higher-is-better metrics that any model that learnt something meets
    (changed thresholds are part of the change; which metrics they name depends on the project's task)."""
    floors = [metric for metric in METRICS[task] if metric.higher_is_better][:2]
    return {metric.name: 0.3 if metric.unit_interval else -1.0 for metric in floors}


@pytest.mark.parametrize("changes", list(PARAMS_CHANGES.values()), ids=list(PARAMS_CHANGES))
def test_params_changes_keep_the_whole_product_working(tmp_path: Path, changes: dict[str, Any]) -> None:
    def change(repo: Path) -> None:
        task = yaml.safe_load((repo / "params.yaml").read_text())["data"]["task"]
        set_params(repo, {**changes, "evaluate.thresholds": lenient_thresholds(task)})

    repo = branch(tmp_path, change)
    base = yaml.safe_load(subprocess.run(["git", "show", "main:params.yaml"], cwd=repo, capture_output=True).stdout)
    metadata = run_as_a_user_would(repo)
    assert metadata["estimator"] == changes["model.estimator"]
    assert metadata["seed"] == changes["seed"]
    params_section = (repo / "report/report.md").read_text().split("### Params")[1].split("### Metrics")[0]
    if base["seed"] != changes["seed"]:
        row = f"| <code>seed</code> | <code>{base['seed']}</code> | <code>{changes['seed']}</code> |"
        assert row in params_section, params_section


def track(repo: Path, frame: pd.DataFrame, raw: str, params: dict[str, Any]) -> None:
    """Replace the bundled data with `frame` at `raw`, track it as a user would, and set `params`."""
    old = repo / yaml.safe_load((repo / "params.yaml").read_text())["data"]["raw"]
    old.unlink(missing_ok=True)
    (repo / raw).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(repo / raw, index=False)
    subprocess.run(
        ["python", "-m", "mltemplate.pipeline.data", "track", raw],
        cwd=repo,
        env=subprocess_env(),
        check=True,
        capture_output=True,
    )
    set_params(repo, {**for_the_task(repo, params["data"]["task"]), **params})


def for_the_task(repo: Path, task: Task) -> dict[str, Any]:
    """What a user switching the project to `task` changes beside the data: the monitor's thresholds and the slices
    (their metrics and columns are of the old task and data), the hyperparameters of estimators the task has not, and,
    when the project's estimator is not one of `task`'s, the estimator: the task's first, with its defaults."""
    model = yaml.safe_load((repo / "params.yaml").read_text())["model"]
    known = task_estimators(task)
    estimator = model["estimator"] if model["estimator"] in known else next(iter(known))
    hyperparameters = {name: values for name, values in model.get("hyperparameters", {}).items() if name in known}
    return {
        "monitor.thresholds": {},
        "evaluate.slices": [],
        "evaluate.max_slice_gap": {},
        "model.estimator": estimator,
        "model.hyperparameters": {estimator: {}, **hyperparameters},
    }


def loans() -> pd.DataFrame:
    """A data set unlike the bundled one: categories, missing values in numbers and categories, string labels."""
    rng = np.random.default_rng(21)
    n = 600
    frame = pd.DataFrame(
        {
            "applicant": [f"a{i:04d}" for i in range(n)],
            "income": rng.lognormal(10.5, 0.5, n).round(0),
            "debt_ratio": rng.beta(2, 5, n).round(3),
            "employment": rng.choice(["salaried", "self-employed", "unemployed", "retired"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    risk = (
        -0.00002 * (frame["income"] - 36000) + 3 * (frame["debt_ratio"] - 0.3) + (frame["employment"] == "unemployed")
    )
    frame["decision"] = np.where(risk + rng.normal(0, 0.6, n) > 0.4, "denied", "approved")
    frame.loc[rng.choice(n, 40, replace=False), "income"] = np.nan
    frame.loc[rng.choice(n, 30, replace=False), "employment"] = np.nan
    return frame


def use_loans(repo: Path) -> None:
    track(
        repo,
        loans(),
        "data/raw/loans.csv",
        {
            "name": "loan-decisions",
            "data": {
                "raw": "data/raw/loans.csv",
                "target": "decision",
                "positive_class": "denied",
                "task": "binary",
                "features": None,
                "categorical": ["employment", "region"],
                "drop": ["applicant"],
            },
            "evaluate.thresholds": {"roc_auc": 0.6},
        },
    )


def test_own_data_with_categories_missing_values_and_string_labels(tmp_path: Path) -> None:
    repo = branch(tmp_path, use_loans)
    metadata = run_as_a_user_would(repo)
    assert metadata["classes"] == ["approved", "denied"]
    model = read_model_metadata(repo / "models/metadata.json")
    assert set(model.nullable) == {"income", "employment"}
    assert model.categories["region"] == ["east", "north", "south", "west"]
    example = json.loads((repo / "examples/predict.json").read_text())
    record = example["records"][0]
    assert set(record) == {"income", "debt_ratio", "employment", "region"}  # no target, no dropped id
    with served(repo, env={"SERVE_WORKERS": "1"}) as url:
        unknown = post_json(url, {"records": [{**record, "income": None, "employment": None}]})
        assert unknown.status == 200, unknown.text
        never_missing = post_json(url, {"records": [{**record, "debt_ratio": None}]})
        assert never_missing.status == 400, never_missing.text
        assert never_missing.json()["field"] == "records.0.debt_ratio"
        unseen = post_json(url, {"records": [{**record, "region": "atlantis"}]})
        assert unseen.status == 200, unseen.text


def use_half_a_million_orders(repo: Path) -> None:
    rng = np.random.default_rng(5)
    n = 500_000
    frame = pd.DataFrame(
        {
            "order_id": np.arange(n),
            "amount": rng.gamma(2.0, 50.0, n).round(2),
            "items": rng.integers(1, 12, n),
            "account_age_days": rng.integers(0, 3650, n),
            "hour": rng.integers(0, 24, n),
            "channel": rng.choice(["web", "app", "phone", "store"], n, p=[0.5, 0.3, 0.1, 0.1]),
        }
    )
    score = 0.01 * (frame["amount"] - 100) - 0.001 * frame["account_age_days"] + 0.8 * (frame["channel"] == "phone")
    frame["fraud"] = np.where(score + rng.normal(0, 1, n) > 1.2, "fraud", "legit")
    frame.loc[rng.choice(n, n // 50, replace=False), "amount"] = np.nan
    track(
        repo,
        frame,
        "data/raw/orders.csv",
        {
            "name": "order-fraud",
            "data": {
                "raw": "data/raw/orders.csv",
                "target": "fraud",
                "positive_class": "fraud",
                "task": "binary",
                "features": None,
                "categorical": ["channel"],
                "drop": ["order_id"],
            },
            "evaluate.thresholds": {"roc_auc": 0.7},
        },
    )


def test_half_a_million_rows(tmp_path: Path) -> None:
    repo = branch(tmp_path, use_half_a_million_orders)
    metadata = run_as_a_user_would(repo)
    assert sum(metadata["metrics"]["support"].values()) == 125_000
    for plot in (repo / "plots").glob("*.json"):
        assert plot.stat().st_size < 100_000, plot  # committed plot data stays small


def use_iris(repo: Path) -> None:
    """Multiclass: scikit-learn's bundled iris, species as names, plus a dropped column to slice by."""
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.data.rename(columns=lambda c: c.removesuffix(" (cm)").replace(" ", "_"))
    frame["species"] = [str(bunch.target_names[i]) for i in bunch.target]
    frame["site"] = np.where(np.arange(len(frame)) % 2 == 0, "greenhouse", "field")
    data = {"raw": "data/raw/iris.csv", "target": "species", "task": "multiclass", "features": None}
    track(
        repo,
        frame,
        "data/raw/iris.csv",
        {
            "name": "iris-species",
            "data": {**data, "categorical": [], "drop": ["site"]},
            "model.estimator": "logistic_regression",
            "model.hyperparameters": {"logistic_regression": {"C": 1.0, "max_iter": 1000}},
            "evaluate.thresholds": {"f1_macro": 0.7, "log_loss": 1.0},
            "evaluate.slices": ["site"],
            "evaluate.max_slice_gap": {"accuracy": 1.0},
        },
    )


def test_a_multiclass_data_set_by_data_and_params_only(tmp_path: Path) -> None:
    repo = branch(tmp_path, use_iris)
    metadata = run_as_a_user_would(repo)
    assert metadata["task"] == "multiclass"
    assert metadata["classes"] == ["setosa", "versicolor", "virginica"]
    metrics = json.loads((repo / "metrics.json").read_text())
    assert {"accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted", "log_loss"} <= set(metrics)
    assert set(metrics["slices"]["site"]) == {"field", "greenhouse"}
    assert {p.stem for p in (repo / "plots").glob("*.json")} == {"confusion", "roc_ovr", "importance"}
    report = (repo / "report/report.md").read_text()
    assert "<code>f1&#95;macro</code>" in report
    assert "<code>slices.site.field.accuracy</code>" in report
    assert (repo / "report/pr_roc_ovr.png").is_file()  # in the artifact (shown when the repository opts in)
    assert (repo / "report/pr_importance.png").is_file()
    assert "### Feature importance" in report
    assert "≤ 1.0000 ✅" in report  # log_loss: a ceiling
    record = json.loads((repo / "examples/predict.json").read_text())["records"][0]
    with served(repo, env={"SERVE_WORKERS": "1"}) as url:
        reply = post_json(url, {"records": [record]})
        assert reply.status == 200, reply.text
        (prediction,) = reply.json()["predictions"]
        assert set(prediction["probabilities"]) == set(metadata["classes"])
        bad = post_json(url, {"records": [{**record, "petal_width": "wide"}]})
        assert bad.status == 400, bad.text
        assert bad.json()["field"] == "records.0.petal_width"
    report = monitor_with_labels(repo, {"accuracy": 0.5, "f1_macro": 0.5})
    assert "| quality f1_macro | floor |" in report, report


def use_diabetes(repo: Path) -> None:
    """Regression: scikit-learn's bundled diabetes progression, sliced by sex."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True, scaled=False)
    frame = bunch.data.assign(sex=bunch.data["sex"].map({1.0: "one", 2.0: "two"}), progression=bunch.target)
    data = {"raw": "data/raw/diabetes.csv", "target": "progression", "task": "regression", "features": None}
    track(
        repo,
        frame,
        "data/raw/diabetes.csv",
        {
            "name": "diabetes-progression",
            "data": {**data, "categorical": ["sex"], "drop": []},
            "model.estimator": "ridge",
            "model.hyperparameters": {"ridge": {"alpha": 1.0}, "random_forest": {"n_estimators": 50}},
            "evaluate.thresholds": {"r2": 0.1, "rmse": 1000.0},
            "evaluate.slices": ["sex"],
            "evaluate.max_slice_gap": {"rmse": 1000.0},
        },
    )


def test_a_regression_data_set_by_data_and_params_only(tmp_path: Path) -> None:
    repo = branch(tmp_path, use_diabetes)
    metadata = run_as_a_user_would(repo)
    assert (metadata["task"], metadata["classes"], metadata["estimator"]) == ("regression", [], "ridge")
    metrics = json.loads((repo / "metrics.json").read_text())
    assert {"rmse", "mae", "r2", "mape"} <= set(metrics)
    assert set(metrics["slices"]["sex"]) == {"one", "two"}
    assert "rmse" in metrics["slice_gap"]["sex"]
    assert {p.stem for p in (repo / "plots").glob("*.json")} == {"predicted_vs_actual", "residuals", "importance"}
    report = (repo / "report/report.md").read_text()
    assert "| <code>rmse</code> |" in report
    assert "≤ 1000.0000 ✅" in report
    assert (repo / "report/pr_predicted_vs_actual.png").is_file()
    assert (repo / "report/pr_residuals.png").is_file()
    record = json.loads((repo / "examples/predict.json").read_text())["records"][0]
    with served(repo, env={"SERVE_WORKERS": "1"}) as url:
        reply = post_json(url, {"records": [record, record]})
        assert reply.status == 200, reply.text
        values = [p["value"] for p in reply.json()["predictions"]]
        assert values == [values[0], values[0]]
        assert isinstance(values[0], float)
        bad = post_json(url, {"records": [{**record, "sex": 2}]})
        assert bad.status == 400, bad.text
        assert bad.json()["field"] == "records.0.sex"
    report = monitor_with_labels(repo, {"rmse": 1000.0, "r2": 0.0})
    assert "| quality rmse | ceiling |" in report, report
