"""The estimator registry (one entry per name params.yaml may give, all the template needs of it) and the Pipeline
built from it; reads and writes no file."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Estimator:
    """Everything the template needs to know of one estimator name: adding an estimator is adding an entry."""

    classes: Mapping[Task, type[BaseEstimator]]
    """The class the name stands for in each task it serves (random_forest: a classifier or a regressor)."""
    trusted_types: frozenset[str] = frozenset()
    """Types outside skops' default trust list that its fitted model holds; loading refuses any other type."""
    blas_fitted: frozenset[str] = frozenset()
    """Its fitted attributes computed through BLAS, whose last bits depend on the CPU's kernel: canonical.py rounds
    them so that every CPU writes the same bytes."""
    blas_spectra: frozenset[str] = frozenset()
    """Fitted arrays of singular values, computed through BLAS: a rank-deficient fit's smallest ones are rounding
    noise whose bits depend on the kernel; canonical.py sets those below 2**-24 of the largest to 0, then rounds
    the rest as it does `blas_fitted`."""
    machine_attributes: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    """(class name, attribute) -> neutral value, for attributes of the estimator or its parts that record the
    fitting machine rather than the model; canonical.py resets them."""
    nudge: tuple[str, Callable[[Any], Any]] | None = None
    """For the tests that change a hyperparameter: its name, and its value in params.yaml (None if unset) -> a new
    valid value that changes the model; None where none reliably does (the tests that need one skip)."""


def _classifier(cls: type[BaseEstimator]) -> dict[Task, type[BaseEstimator]]:
    return {"binary": cls, "multiclass": cls}


# Linear models' coefficients differ by up to 5e-13 (relative) between OpenBLAS kernels (docs/pipeline.md,
# "Reproducibility").
LINEAR_BLAS_FITTED = frozenset({"coef_", "intercept_"})

ESTIMATORS: dict[str, Estimator] = {
    "logistic_regression": Estimator(
        classes=_classifier(LogisticRegression),
        blas_fitted=LINEAR_BLAS_FITTED,
        nudge=("C", lambda value: round((value or 1.0) / 7, 6)),
    ),
    "linear_regression": Estimator(
        classes={"regression": LinearRegression},
        blas_fitted=LINEAR_BLAS_FITTED,
        # Its least squares keep the design's singular values; a one-hot encoded column and the intercept make
        # the design rank-deficient, and the smallest is then ~1e-16 of noise.
        blas_spectra=frozenset({"singular_"}),
        # No nudge: least squares has no hyperparameter that always changes the fit (fit_intercept does not when a
        # one-hot encoded column absorbs the intercept).
    ),
    "ridge": Estimator(
        classes={"regression": Ridge},
        blas_fitted=LINEAR_BLAS_FITTED,
        nudge=("alpha", lambda value: round((value or 1.0) * 10, 6)),
    ),
    "random_forest": Estimator(
        classes={**_classifier(RandomForestClassifier), "regression": RandomForestRegressor},
        trusted_types=frozenset({"sklearn.tree._tree.Tree"}),
        nudge=("max_depth", lambda value: 2 if value != 2 else 3),  # a much shallower forest
    ),
    "hist_gradient_boosting": Estimator(
        classes={**_classifier(HistGradientBoostingClassifier), "regression": HistGradientBoostingRegressor},
        trusted_types=frozenset({"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"}),
        # The bin mapper stores the number of CPU cores it was fitted with (None: use the serving machine's).
        machine_attributes={("_BinMapper", "n_threads"): None},
        nudge=("learning_rate", lambda value: round((value or 0.1) / 10, 6)),
    ),
}
"""The estimators `model.estimator` may name; a name like random_forest means the task's kind."""

PIPELINE_TRUSTED_TYPES = frozenset({"numpy.dtype"})
"""Types outside skops' defaults that build_pipeline's preprocessing holds (SimpleImputer keeps its fitted dtype)."""
TRUSTED_TYPES = PIPELINE_TRUSTED_TYPES.union(*(entry.trusted_types for entry in ESTIMATORS.values()))
"""Every type outside skops' defaults that a model of a registered estimator holds; model.py refuses any other."""

_BY_CLASS = {cls: entry for entry in ESTIMATORS.values() for cls in entry.classes.values()}

# Set by the pipeline itself: a user value would be silently overridden, so it is refused instead.
RESERVED = frozenset({"random_state"})


def task_estimators(task: Task) -> dict[str, type[BaseEstimator]]:
    """The names `model.estimator` may take in `task`, and the class each stands for."""
    return {name: entry.classes[task] for name, entry in ESTIMATORS.items() if task in entry.classes}


def entry_of(estimator: BaseEstimator) -> Estimator | None:
    """The registry entry of a fitted or unfitted estimator (None for a preprocessing step or a helper)."""
    return _BY_CLASS.get(type(estimator))


def estimator_class(name: str, task: Task) -> type[BaseEstimator]:
    """The class `name` stands for in `task`; ValueError says why a name is refused (e.g. a classifier for a
    regression task) and which names the task takes."""
    entry = ESTIMATORS.get(name)
    if entry is not None and task in entry.classes:
        return entry.classes[task]
    allowed = f"data.task {task!r} takes {sorted(task_estimators(task))}"
    if entry is not None and task == "regression":
        raise ValueError(f"{name!r} is a classifier; {allowed}")
    if entry is not None and "regression" in entry.classes:
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
        # Checks types and ranges now rather than minutes later inside fit(); scikit-learn's own estimators declare
        # them, others (LightGBM) check in fit().
        if hasattr(estimator, "_parameter_constraints"):
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
    derive: BaseEstimator | None = None,
) -> Pipeline:
    """Impute and scale numbers, impute and one-hot encode categories, then the estimator; `derive` (features.py), when
    given, first adds derived columns, which `numeric` and `categorical` then name beside the raw ones."""
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
    steps: list[tuple[str, Any]] = [("preprocess", preprocess), ("estimator", estimator)]
    return Pipeline([("features", derive), *steps] if derive is not None else steps)
