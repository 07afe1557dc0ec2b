"""Data drift of each feature, and of the predicted labels, between the rows the model was trained on and a window
of the prediction log. Numeric features: Kolmogorov-Smirnov (p-value), Wasserstein distance (in reference standard
deviations) or PSI; categorical features and labels: chi-squared test of the counts (p-value) or Jensen-Shannon
distance. scipy's implementations; see docs/monitoring.md for why not Evidently."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from mltemplate.monitoring.alerts import Check
from mltemplate.params import P_VALUE_METHODS, DriftParams, DriftTest
from mltemplate.schema import Schema

MISSING = "<missing>"
PSI_BINS = 10
EPSILON = 1e-4


def numeric_statistic(reference: np.ndarray, current: np.ndarray, method: str) -> float:
    """The drift statistic of two numeric samples (NaNs dropped)."""
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if len(reference) == 0 or len(current) == 0:
        return 1.0 if method in P_VALUE_METHODS else 0.0
    if method == "ks":
        return float(stats.ks_2samp(reference, current).pvalue)
    if method == "wasserstein":
        scale = float(np.std(reference)) or 1.0
        return float(stats.wasserstein_distance(reference, current)) / scale
    if method == "psi":
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)))
        if len(edges) < 2:
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        edges[0], edges[-1] = -np.inf, np.inf
        expected = np.histogram(reference, edges)[0] / len(reference) + EPSILON
        actual = np.histogram(current, edges)[0] / len(current) + EPSILON
        return float(np.sum((actual - expected) * np.log(actual / expected)))
    raise ValueError(f"unknown numeric drift method {method!r}")


def categorical_statistic(reference: Sequence[object], current: Sequence[object], method: str) -> float:
    """The drift statistic of two samples of categories (labels, or a categorical feature)."""
    ref = pd.Series(list(reference), dtype=object).fillna(MISSING).astype(str).value_counts()
    cur = pd.Series(list(current), dtype=object).fillna(MISSING).astype(str).value_counts()
    categories = sorted(set(ref.index) | set(cur.index))
    table = np.array([[ref.get(c, 0) for c in categories], [cur.get(c, 0) for c in categories]], dtype=float)
    if table[0].sum() == 0 or table[1].sum() == 0:
        return 1.0 if method in P_VALUE_METHODS else 0.0
    if method == "chi2":
        if len(categories) < 2:
            return 1.0  # one category in both samples: nothing moved
        return float(stats.chi2_contingency(table).pvalue)
    if method == "jensenshannon":
        value = float(distance.jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum(), base=2))
        return 0.0 if math.isnan(value) else value
    raise ValueError(f"unknown categorical drift method {method!r}")


def _check(name: str, test: DriftTest, value: float, tests: int, bonferroni: bool) -> Check:
    if test.method in P_VALUE_METHODS:
        threshold = test.threshold / tests if bonferroni else test.threshold
        return Check("drift", name, test.method, value, threshold, breached=value < threshold)
    return Check(
        "drift", name, test.method, value, test.threshold, breached=value > test.threshold, higher_is_worse=True
    )


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, schema: Schema, params: DriftParams) -> list[Check]:
    """One check per feature; with `bonferroni`, p-value thresholds are shared by all features tested."""
    tests = len(schema.features)
    checks = []
    for name in schema.numeric:
        ref = pd.to_numeric(reference[name], errors="coerce").to_numpy(dtype=float)
        cur = pd.to_numeric(current[name], errors="coerce").to_numpy(dtype=float)
        value = numeric_statistic(ref, cur, params.numeric.method)
        checks.append(_check(name, params.numeric, value, tests, params.bonferroni))
    for name in schema.categorical:
        value = categorical_statistic(list(reference[name]), list(current[name]), params.categorical.method)
        checks.append(_check(name, params.categorical, value, tests, params.bonferroni))
    return checks


def prediction_drift(
    reference: Sequence[object], current: Sequence[object], params: DriftParams, *, numeric: bool = False
) -> Check:
    """The window's predictions against the model's own for its training rows: labels with `drift.prediction`'s
    method, or (regression, `numeric`) predicted numbers with `drift.numeric`'s."""
    if numeric:
        ref = pd.to_numeric(pd.Series(list(reference)), errors="coerce").to_numpy(dtype=float)
        cur = pd.to_numeric(pd.Series(list(current)), errors="coerce").to_numpy(dtype=float)
        return _check("prediction", params.numeric, numeric_statistic(ref, cur, params.numeric.method), 1, False)
    value = categorical_statistic(list(reference), list(current), params.prediction.method)
    return _check("prediction", params.prediction, value, 1, bonferroni=False)
