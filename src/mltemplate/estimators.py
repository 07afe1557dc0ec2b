"""The estimators params.yaml may name, and the preprocessing + estimator Pipeline built from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from mltemplate.metrics import Task

CLASSIFIERS: dict[str, type[BaseEstimator]] = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
}
REGRESSORS: dict[str, type[BaseEstimator]] = {
    "linear_regression": LinearRegression,
    "ridge": Ridge,
    "random_forest": RandomForestRegressor,
    "hist_gradient_boosting": HistGradientBoostingRegressor,
}
ESTIMATORS: dict[Task, dict[str, type[BaseEstimator]]] = {
    "binary": CLASSIFIERS,
    "multiclass": CLASSIFIERS,
    "regression": REGRESSORS,
}
"""Per task, the estimators `model.estimator` may name; a name like random_forest means the task's kind."""

# Set by the pipeline itself: a user value would be silently overridden, so it is refused instead.
RESERVED = frozenset({"random_state"})


def estimator_class(name: str, task: Task) -> type[BaseEstimator]:
    """The class `name` stands for in `task`; ValueError says why a name is refused (e.g. a classifier for a
    regression task) and which names the task takes."""
    known = ESTIMATORS[task]
    if name in known:
        return known[name]
    allowed = f"data.task {task!r} takes {sorted(known)}"
    if task == "regression" and name in CLASSIFIERS:
        raise ValueError(f"{name!r} is a classifier; {allowed}")
    if task != "regression" and name in REGRESSORS:
        raise ValueError(f"{name!r} is a regressor; {allowed}")
    raise ValueError(f"unknown estimator {name!r}; {allowed}")


def make_estimator(
    name: str, hyperparameters: Mapping[str, Any], *, seed: int | None = None, task: Task = "binary"
) -> BaseEstimator:
    """An unfitted estimator for `task`; raises ValueError naming the first bad hyperparameter."""
    cls = estimator_class(name, task)
    estimator = cls()
    accepted = estimator.get_params(deep=False)
    for key in hyperparameters:
        if key in RESERVED:
            raise ValueError(f"hyperparameters.{name}.{key}: set by the top-level `seed`, remove it here")
        if key not in accepted:
            raise ValueError(
                f"hyperparameters.{name}.{key}: {cls.__name__} takes no such parameter; "
                f"choose from {sorted(set(accepted) - RESERVED)}"
            )
    estimator.set_params(**hyperparameters)
    if "random_state" in accepted and seed is not None:
        estimator.set_params(random_state=seed)
    try:
        # Checks types and ranges now rather than minutes later inside fit().
        estimator._validate_params()
    except InvalidParameterError as error:
        bad = next((key for key in hyperparameters if f"'{key}'" in str(error)), "?")
        raise ValueError(f"hyperparameters.{name}.{bad}: {error}") from None
    return estimator


def check_hyperparameters(name: str, hyperparameters: Mapping[str, Any], *, task: Task = "binary") -> None:
    """Raise ValueError if `name` is not an estimator of `task` or does not accept `hyperparameters`."""
    make_estimator(name, hyperparameters, task=task)


def build_pipeline(
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    estimator: BaseEstimator,
) -> Pipeline:
    """Impute and scale numbers, impute and one-hot encode categories, then the estimator."""
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        transformers.append(("numeric", numbers, list(numeric)))
    if categorical:
        categories = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categories, list(categorical)))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])
