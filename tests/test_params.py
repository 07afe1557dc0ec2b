from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltemplate.dvcfiles import read_tracked
from mltemplate.params import MODEL_SECTIONS, ParamsError, load_params, parse_params

pytestmark = pytest.mark.project  # test_repository_params_load reads this project's params.yaml

ROOT = Path(__file__).resolve().parents[1]

BINARY = """
name: churn-model
seed: 7
data: {raw: data/raw/churn.csv, target: status, positive_class: churned, task: binary, features: null,
       categorical: [plan], drop: [customer_id]}
split: {test_size: 0.25}
model:
  estimator: logistic_regression
  hyperparameters:
    logistic_regression: {C: 1.0, max_iter: 1000}
    random_forest: {n_estimators: 50, max_depth: 8, n_jobs: 1}
evaluate: {thresholds: {accuracy: 0.8, recall: 0.7, roc_auc: 0.85}, tolerance: 0.02, slices: [], max_slice_gap: {}}
monitor:
  window: 24h
  drift: {numeric: {method: ks, threshold: 0.05}, categorical: {method: chi2, threshold: 0.05}}
  thresholds: {accuracy: 0.75, roc_auc: 0.8}
  debounce: {breaches: 2, windows: 3}
"""
"""The rules' base: a binary params document of its own, not the project's, whose task, estimator and metrics
are the user's to change (the project's own file is test_repository_params_load's)."""


@pytest.fixture
def raw() -> dict[str, Any]:
    return dict(yaml.safe_load(BINARY))


def with_value(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = changed
    for key in parents:
        node = node[key]
    node[last] = value
    return changed


def test_repository_params_load() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.model.estimator in params.model.hyperparameters
    assert params.data.raw == read_tracked(ROOT / "data.dvc").path.relative_to(ROOT)  # data.raw is what data.dvc tracks


@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("split.shuffle", True, r"^params.yaml: split.shuffle: unknown key$"),
        ("seed", "forty-two", r"^params.yaml: seed: .*integer.*'forty-two'"),
        ("seed", True, r"^params.yaml: seed: "),
        ("split.test_size", 1.5, r"^params.yaml: split.test_size: .*less than 1"),
        (
            "model.estimator",
            "svm",
            r"^params.yaml: model.estimator: unknown estimator 'svm'; data.task 'binary' takes \[",
        ),
        (
            "model.hyperparameters.random_forest.n_trees",
            10,
            r"^params.yaml: model.hyperparameters.random_forest.n_trees: RandomForestClassifier takes no such",
        ),
        (
            "model.hyperparameters.logistic_regression.C",
            -1.0,
            r"^params.yaml: model.hyperparameters.logistic_regression.C: .*'C' parameter",
        ),
        (
            "model.hyperparameters.random_forest.random_state",
            1,
            r"^params.yaml: model.hyperparameters.random_forest.random_state: set by the top-level `seed`",
        ),
        ("evaluate.thresholds.recall", 1.2, r"^params.yaml: evaluate.thresholds.recall: 1.2 is outside \[0, 1\]"),
        ("evaluate.thresholds.speed", 0.5, r"^params.yaml: evaluate.thresholds.speed: not a metric of task 'binary'"),
        ("evaluate.thresholds.rmse", 0.5, r"^params.yaml: evaluate.thresholds.rmse: not a metric of task 'binary'"),
        ("evaluate.max_slice_gap", {"f1": 0.1}, r"^params.yaml: evaluate.max_slice_gap: set evaluate.slices too"),
        ("evaluate.tolerance", -0.1, r"^params.yaml: evaluate.tolerance: "),
        ("data.task", "ranking", r"^params.yaml: data.task: .*'binary', 'multiclass' or 'regression'"),
        ("name", "Has Spaces", r"^params.yaml: name: "),
        ("monitor.window", "2 weeks", r"^params.yaml: monitor.window: window '2 weeks' is not <n>m, <n>h or <n>d"),
        ("monitor.min_rows", 0, r"^params.yaml: monitor.min_rows: "),
        ("monitor.thresholds", {"speed": 0.5}, r"^params.yaml: monitor.thresholds.speed: not a metric of task"),
        (
            "monitor.drift.numeric",
            {"method": "ttest", "threshold": 0.05},
            r"^params.yaml: monitor.drift.numeric.method: unknown method 'ttest'; choose one of",
        ),
        (
            "monitor.drift.categorical",
            {"method": "chi2", "threshold": 1.5},
            r"^params.yaml: monitor.drift.categorical.threshold: chi2 compares a p-value",
        ),
        (
            "monitor.debounce",
            {"breaches": 3, "windows": 2},
            r"^params.yaml: monitor.debounce: breaches \(3\) cannot exceed windows \(2\)",
        ),
        ("monitor.every", "1h", r"^params.yaml: monitor.every: unknown key$"),
    ],
)
def test_bad_value_fails_with_one_line_naming_the_key(
    raw: dict[str, Any], dotted: str, value: Any, message: str
) -> None:
    with pytest.raises(ParamsError, match=message) as caught:
        parse_params(with_value(raw, dotted, value), source=Path("params.yaml"))
    assert "\n" not in str(caught.value)


def test_monitor_section_is_optional_and_window_is_in_seconds(raw: dict[str, Any]) -> None:
    del raw["monitor"]
    assert parse_params(raw).monitor.window_seconds > 0
    assert parse_params(with_value({**raw, "monitor": {}}, "monitor.window", "90m")).monitor.window_seconds == 5400


def test_missing_section_is_named(raw: dict[str, Any]) -> None:
    del raw["model"]
    with pytest.raises(ParamsError, match=r"^params.yaml: model: required key is missing$"):
        parse_params(raw, source=Path("params.yaml"))


def test_integer_labels_match_csv_text(raw: dict[str, Any]) -> None:
    params = parse_params(with_value(raw, "data.positive_class", 1))
    assert params.data.positive_class == "1"


@pytest.mark.parametrize("label", ["yes", "no", "on", "off", "y", "N"])
def test_a_class_yaml_11_calls_a_boolean_survives_dvcs_rewrite_of_params(
    raw: dict[str, Any], label: str, tmp_path: Path
) -> None:
    """`dvc exp run -S` rewrites params.yaml with DVC's YAML 1.2 writer, which drops the quotes of 'yes': the params
    must still name the class `yes`, not True."""
    from dvc.utils.serialize import dump_yaml, modify_yaml

    path = tmp_path / "params.yaml"
    dump_yaml(path, with_value(raw, "data.positive_class", label))
    with modify_yaml(path) as document:  # what `-S` does
        document["seed"] = 8
    assert f"positive_class: {label}\n" in path.read_text()  # unquoted, as DVC writes it
    params = load_params(path)
    assert (params.data.positive_class, params.seed, params.monitor.drift.bonferroni) == (label, 8, True)


def test_params_are_frozen(raw: dict[str, Any]) -> None:
    params = parse_params(raw)
    with pytest.raises(ValueError, match="frozen"):
        params.seed = 1  # type: ignore[misc]


def test_identity_is_the_sections_that_make_the_model_without_policy(raw: dict[str, Any]) -> None:
    identity = parse_params(raw).identity()
    assert tuple(identity) == MODEL_SECTIONS == ("name", "seed", "data", "split", "model")
    assert identity["data"]["raw"] == raw["data"]["raw"]  # JSON values: what MLflow logs and the model key hashes


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: [1, 2\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML"):
        load_params(path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "params.yaml")


def test_target_listed_as_feature_is_refused(raw: dict[str, Any]) -> None:
    target = raw["data"]["target"]
    with pytest.raises(ParamsError, match=rf"data: target '{target}' is also listed"):
        parse_params(with_value(raw, "data.drop", [target]))


def as_task(raw: dict[str, Any], task: str, estimator: str, thresholds: dict[str, float]) -> dict[str, Any]:
    """`raw` switched to `task`: no positive class unless binary, hyperparameters of `estimator` only."""
    changed = with_value(with_value(raw, "data.task", task), "model.estimator", estimator)
    if task != "binary":
        del changed["data"]["positive_class"]
    changed["model"]["hyperparameters"] = {}
    changed["evaluate"]["thresholds"] = thresholds
    if task != "binary":
        changed.setdefault("monitor", {})["thresholds"] = {}  # the binary metrics it names are not metrics of this task
    return changed


@pytest.mark.parametrize(
    ("task", "estimator", "thresholds"),
    [
        ("multiclass", "logistic_regression", {"f1_macro": 0.8, "log_loss": 0.5}),
        ("regression", "ridge", {"rmse": 12.5, "r2": 0.3, "mape": 2.0}),
        ("regression", "hist_gradient_boosting", {}),
    ],
)
def test_each_task_takes_its_estimators_and_metrics(
    raw: dict[str, Any], task: str, estimator: str, thresholds: dict[str, float]
) -> None:
    params = parse_params(as_task(raw, task, estimator, thresholds))
    assert (params.data.task, params.model.estimator, params.evaluate.thresholds) == (task, estimator, thresholds)


def test_a_classifier_for_a_regression_task_is_refused_by_name(raw: dict[str, Any]) -> None:
    with pytest.raises(ParamsError, match=r"^params.yaml: model.estimator: 'logistic_regression' is a classifier"):
        parse_params(as_task(raw, "regression", "logistic_regression", {}))


def test_hyperparameters_of_another_tasks_estimator_are_refused(raw: dict[str, Any]) -> None:
    changed = as_task(raw, "regression", "ridge", {})
    changed["model"]["hyperparameters"] = {"logistic_regression": {"C": 1.0}}
    with pytest.raises(ParamsError, match=r"model.hyperparameters.logistic_regression: 'logistic_regression' is a"):
        parse_params(changed)


def test_binary_task_needs_a_positive_class(raw: dict[str, Any]) -> None:
    del raw["data"]["positive_class"]
    with pytest.raises(ParamsError, match=r"^params.yaml: data.positive_class: required when task is binary"):
        parse_params(raw)


def test_positive_class_is_refused_outside_the_binary_task(raw: dict[str, Any]) -> None:
    changed = as_task(raw, "multiclass", "random_forest", {})
    changed["data"]["positive_class"] = "x"
    with pytest.raises(ParamsError, match=r"^params.yaml: data.positive_class: applies to the binary task only"):
        parse_params(changed)


def test_a_ceiling_may_exceed_one(raw: dict[str, Any]) -> None:
    params = parse_params(as_task(raw, "regression", "linear_regression", {"mae": 350.0}))
    assert params.evaluate.thresholds == {"mae": 350.0}


def test_slicing_by_the_target_is_refused(raw: dict[str, Any]) -> None:
    target = raw["data"]["target"]
    with pytest.raises(ParamsError, match=rf"^params.yaml: evaluate.slices: '{target}' is the target"):
        parse_params(with_value(raw, "evaluate.slices", [target]))


def test_monitor_thresholds_name_metrics_of_the_task(raw: dict[str, Any]) -> None:
    changed = as_task(raw, "regression", "ridge", {})
    changed["monitor"]["thresholds"] = {"accuracy": 0.8}
    with pytest.raises(
        ParamsError, match=r"^params.yaml: monitor.thresholds.accuracy: not a metric of task 'regression'"
    ):
        parse_params(changed)
    changed["monitor"]["thresholds"] = {"rmse": 40, "r2": 0.3}
    assert parse_params(changed).monitor.thresholds == {"rmse": 40.0, "r2": 0.3}
