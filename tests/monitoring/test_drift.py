"""Drift tests on fixtures of our own: each method tells same from shifted, in-distribution streams rarely alarm
(the false-alarm rate over many seeds is measured and printed), and shifted features are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltemplate.monitoring import drift
from mltemplate.params import DriftParams, DriftTest
from mltemplate.schema import Schema

SCHEMA = Schema(numeric=("a", "b", "c", "d"), categorical=("site",), target="y", positive_class="yes")
SEEDS = 200
ALPHA = 0.05
TOLERANCE = 3 * (ALPHA * (1 - ALPHA) / SEEDS) ** 0.5
"""Three binomial standard errors: the measured rate of SEEDS windows may exceed the designed ALPHA by chance."""


def sample(
    rng: np.random.Generator, n: int, *, shift: float = 0.0, sites: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(10 + shift, 2, n),
            "b": rng.exponential(3, n),
            "c": rng.normal(0, 1, n),
            "d": rng.uniform(0, 5, n),
            "site": rng.choice(["north", "south", "east"], n, p=list(sites)),
        }
    )


@pytest.mark.parametrize(
    ("method", "same_is_below"),
    [("ks", False), ("wasserstein", True), ("psi", True)],
)
def test_numeric_methods_separate_same_from_shifted(method: str, same_is_below: bool) -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 2000)
    same = drift.numeric_statistic(reference, rng.normal(0, 1, 500), method)
    shifted = drift.numeric_statistic(reference, rng.normal(1, 1, 500), method)
    assert (same < shifted) if same_is_below else (same > shifted)


@pytest.mark.parametrize(("method", "same_is_below"), [("chi2", False), ("jensenshannon", True)])
def test_categorical_methods_separate_same_from_shifted(method: str, same_is_below: bool) -> None:
    rng = np.random.default_rng(0)
    reference = list(rng.choice(["x", "y"], 2000, p=[0.7, 0.3]))
    same = drift.categorical_statistic(reference, list(rng.choice(["x", "y"], 500, p=[0.7, 0.3])), method)
    shifted = drift.categorical_statistic(reference, list(rng.choice(["x", "y", "z"], 500, p=[0.3, 0.3, 0.4])), method)
    assert (same < shifted) if same_is_below else (same > shifted)


def test_missing_values_are_ignored_in_numbers_and_a_category_in_labels() -> None:
    assert drift.numeric_statistic(np.array([1.0, np.nan, 2.0]), np.array([np.nan]), "ks") == 1.0
    assert drift.categorical_statistic(["a", None], ["a", None], "chi2") == pytest.approx(1.0)


def test_bonferroni_divides_the_p_value_threshold_by_the_features_tested() -> None:
    rng = np.random.default_rng(1)
    checks = drift.feature_drift(sample(rng, 300), sample(rng, 300), SCHEMA, DriftParams())
    assert {c.threshold for c in checks} == {0.05 / len(SCHEMA.features)}
    assert [c.name for c in checks] == list(SCHEMA.features)


def test_a_shifted_stream_names_the_shifted_features_only() -> None:
    rng = np.random.default_rng(2)
    reference = sample(rng, 1000)
    current = sample(rng, 300, shift=3.0, sites=(0.1, 0.2, 0.7))
    breached = {c.name for c in drift.feature_drift(reference, current, SCHEMA, DriftParams()) if c.breached}
    assert breached == {"a", "site"}


@pytest.mark.parametrize(
    "params",
    [
        DriftParams(),
        DriftParams(
            numeric=DriftTest(method="wasserstein", threshold=0.2),
            categorical=DriftTest(method="jensenshannon", threshold=0.1),
        ),
        DriftParams(numeric=DriftTest(method="psi", threshold=0.2)),
    ],
    ids=["ks+chi2 (default)", "wasserstein+jensenshannon", "psi"],
)
def test_in_distribution_streams_rarely_raise_a_false_alarm(params: DriftParams) -> None:
    rng = np.random.default_rng(3)
    reference = sample(rng, 1000)
    alarms = 0
    for seed in range(SEEDS):
        current = sample(np.random.default_rng(1000 + seed), 300)
        alarms += any(c.breached for c in drift.feature_drift(reference, current, SCHEMA, params))
    rate = alarms / SEEDS
    print(f"\nfalse-alarm rate of one window ({params.numeric.method}/{params.categorical.method}): {rate:.1%}")
    assert rate <= ALPHA + TOLERANCE


def test_debouncing_two_of_three_windows_cuts_false_alarms_further() -> None:
    from mltemplate.monitoring.alerts import debounce
    from mltemplate.params import DebounceParams

    rng = np.random.default_rng(4)
    reference = sample(rng, 1000)
    rule = DebounceParams(breaches=2, windows=3)
    history: list[list[str]] = []
    windows = alarms = 0
    for seed in range(SEEDS):
        current = sample(np.random.default_rng(5000 + seed), 300)
        checks = drift.feature_drift(reference, current, SCHEMA, DriftParams())
        alarms += bool(debounce(checks, history, rule))
        history.insert(0, [c.key for c in checks if c.breached])
        windows += 1
    rate = alarms / windows
    print(f"\nfalse-alarm rate with 2-of-3 debouncing: {rate:.1%}")
    assert rate <= ALPHA / 2


def test_prediction_drift_compares_label_shares() -> None:
    reference = ["no"] * 700 + ["yes"] * 300
    assert not drift.prediction_drift(reference, ["no"] * 70 + ["yes"] * 30, DriftParams()).breached
    assert drift.prediction_drift(reference, ["no"] * 30 + ["yes"] * 70, DriftParams()).breached
