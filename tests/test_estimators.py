from __future__ import annotations

import pytest
from sklearn.base import is_classifier, is_regressor

from mltemplate.estimators import ESTIMATORS, build_pipeline, make_estimator
from mltemplate.metrics import TASKS, Task

SEEDED = [(task, name) for task in TASKS for name in sorted(ESTIMATORS[task]) if name != "linear_regression"]


@pytest.mark.parametrize(("task", "name"), SEEDED)
def test_seed_sets_random_state(task: Task, name: str) -> None:
    estimator = make_estimator(name, {}, seed=7, task=task)
    assert estimator.get_params()["random_state"] == 7


@pytest.mark.parametrize(("task", "name"), [(task, name) for task in TASKS for name in sorted(ESTIMATORS[task])])
def test_each_task_gets_an_estimator_of_its_kind(task: Task, name: str) -> None:
    estimator = make_estimator(name, {}, task=task)
    assert is_regressor(estimator) if task == "regression" else is_classifier(estimator)


@pytest.mark.parametrize(
    ("task", "name", "message"),
    [
        ("regression", "logistic_regression", r"^'logistic_regression' is a classifier; data.task 'regression' takes"),
        ("multiclass", "ridge", r"^'ridge' is a regressor; data.task 'multiclass' takes"),
    ],
)
def test_an_estimator_of_the_other_kind_is_refused_by_name(task: Task, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_estimator(name, {}, task=task)


@pytest.mark.parametrize(
    ("name", "hyperparameters", "message"),
    [
        ("svm", {}, r"unknown estimator 'svm'; data.task 'binary' takes \['hist_gradient_boosting'"),
        ("random_forest", {"trees": 5}, r"hyperparameters.random_forest.trees: RandomForestClassifier takes no"),
        ("random_forest", {"n_estimators": 0}, r"hyperparameters.random_forest.n_estimators: .*range \[1, inf\)"),
        ("logistic_regression", {"random_state": 1}, r"set by the top-level `seed`"),
    ],
)
def test_bad_estimator_settings_are_named(name: str, hyperparameters: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_estimator(name, hyperparameters)


def test_pipeline_has_branch_per_column_kind() -> None:
    pipeline = build_pipeline(numeric=["a"], categorical=["b"], estimator=make_estimator("logistic_regression", {}))
    names = [name for name, _, _ in pipeline.named_steps["preprocess"].transformers]
    assert names == ["numeric", "categorical"]


def test_pipeline_without_categories_has_no_encoder() -> None:
    pipeline = build_pipeline(numeric=["a"], categorical=[], estimator=make_estimator("logistic_regression", {}))
    assert [name for name, _, _ in pipeline.named_steps["preprocess"].transformers] == ["numeric"]
