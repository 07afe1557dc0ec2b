from __future__ import annotations

import pytest

from mltemplate.estimators import ESTIMATORS, build_pipeline, make_estimator


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_seed_sets_random_state(name: str) -> None:
    estimator = make_estimator(name, {}, seed=7)
    assert estimator.get_params()["random_state"] == 7


@pytest.mark.parametrize(
    ("name", "hyperparameters", "message"),
    [
        ("svm", {}, r"unknown estimator 'svm'; choose one of \['hist_gradient_boosting'"),
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
