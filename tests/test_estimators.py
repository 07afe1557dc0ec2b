"""mltemplate.estimators: the registry's entries hold what each estimator needs, and params' names and
hyperparameters are refused with what is allowed."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import is_classifier, is_regressor
from sklearn.pipeline import Pipeline

from mltemplate.canonical import dumps
from mltemplate.estimators import (
    ESTIMATORS,
    PIPELINE_TRUSTED_TYPES,
    build_pipeline,
    estimator_class,
    make_estimator,
    task_estimators,
)
from mltemplate.metrics import TASKS, Task

REGISTERED = [(task, name) for task in TASKS for name in sorted(task_estimators(task))]
SEEDED = [(task, name) for task, name in REGISTERED if name != "linear_regression"]
BINARY = task_estimators("binary")


@pytest.mark.parametrize(("task", "name"), SEEDED)
def test_seed_sets_random_state(task: Task, name: str) -> None:
    estimator = make_estimator(name, {}, seed=7, task=task)
    assert estimator.get_params()["random_state"] == 7


@pytest.mark.parametrize(("task", "name"), REGISTERED)
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
        ("svm", {}, rf"unknown estimator 'svm'; data.task 'binary' takes {re.escape(str(sorted(BINARY)))}$"),
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


def test_every_entry_serves_a_task_with_an_estimator_of_that_task_kind() -> None:
    for name, entry in ESTIMATORS.items():
        assert entry.classes, name
        for task, cls in entry.classes.items():
            assert estimator_class(name, task) is cls


def _fit(task: Task, name: str, frame: pd.DataFrame, **hyperparameters: object) -> Pipeline:
    """The name's pipeline for `task`, fitted on mixed_frame: dose and site in, a target of the task's kind out."""
    targets = {
        "binary": frame["outcome"],
        "multiclass": pd.cut(frame["age"], 3, labels=["young", "middle", "old"]).astype(str),
        "regression": frame["age"],
    }
    estimator = make_estimator(name, hyperparameters, seed=0, task=task)
    pipeline = build_pipeline(numeric=["dose"], categorical=["site"], estimator=estimator)
    return pipeline.fit(frame[["dose", "site"]], targets[task])


def _answers(pipeline: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    features = frame[["dose", "site"]]
    return np.asarray(pipeline.predict_proba(features) if is_classifier(pipeline) else pipeline.predict(features))


@pytest.mark.parametrize(("task", "name"), [(task, name) for task, name in REGISTERED if ESTIMATORS[name].nudge])
def test_the_nudge_is_a_valid_value_that_changes_the_model(task: Task, name: str, mixed_frame: pd.DataFrame) -> None:
    nudge = ESTIMATORS[name].nudge
    assert nudge is not None
    hyperparameter, change = nudge
    nudged = _fit(task, name, mixed_frame, **{hyperparameter: change(None)})
    assert not np.allclose(_answers(nudged, mixed_frame), _answers(_fit(task, name, mixed_frame), mixed_frame))


@pytest.mark.parametrize(("task", "name"), REGISTERED)
def test_an_entry_trusts_exactly_the_types_its_fitted_model_holds(
    task: Task, name: str, mixed_frame: pd.DataFrame
) -> None:
    # Too few and load refuses the estimator's own model; more would let a forged file use types nothing needs.
    found = set(sio.get_untrusted_types(data=dumps(_fit(task, name, mixed_frame))))
    assert found == PIPELINE_TRUSTED_TYPES | ESTIMATORS[name].trusted_types
