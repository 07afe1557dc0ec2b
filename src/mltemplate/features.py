"""The project's derived columns (feature engineering): one scikit-learn transformer that train puts in front of the
preprocessing inside the saved Pipeline, so training, evaluation, the service and batch scoring all compute them with
this code from the raw columns (no train/serve skew; the service still takes the raw columns). The template ships it
empty, which leaves the Pipeline, and so the model file, as it is without it; docs/customise.md ("Add a feature")
fills it in. Reads and writes no file."""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class DerivedColumns(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no type hints
    """The raw columns plus the derived ones, named in `numeric` and `categorical`. Whatever needs learning (a median,
    a bin edge) is learnt in `fit`, from the training rows only, and kept in an attribute ending in `_`; `transform`
    computes."""

    numeric: ClassVar[tuple[str, ...]] = ()
    """The numeric columns `transform` adds: imputed and scaled like the raw numbers."""
    categorical: ClassVar[tuple[str, ...]] = ()
    """The categorical columns it adds: imputed and one-hot encoded like the raw categories."""

    def fit(self, X: pd.DataFrame, y: Any = None) -> DerivedColumns:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X


TRUSTED_TYPES: frozenset[str] = frozenset({f"{DerivedColumns.__module__}.{DerivedColumns.__qualname__}"})
"""What a model holds of this module, for model.py's safe loading: the class above, plus any type outside skops'
defaults that its fitted attributes hold (loading refuses and names any type missing here)."""


def derive_step() -> DerivedColumns | None:
    """The step train puts before the preprocessing; None while the project derives no column."""
    return DerivedColumns() if DerivedColumns.numeric or DerivedColumns.categorical else None
