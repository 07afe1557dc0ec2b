"""compare.py on fixed inputs: the params diff, the policy changes (and which loosen the gate), the metric rows with
their thresholds. Which model is better is no longer read off two metrics.json values (they were measured on
different rows): tests/test_comparison.py tests the same-rows comparison that replaced it."""

from __future__ import annotations

from typing import Any

import pytest

from mltemplate.gate import threshold
from mltemplate.metrics import scalar_metrics
from mltemplate.params import EvaluateParams
from mltemplate.report.compare import MISSING, PolicyChange, metric_rows, params_diff, policy_changes

BASE = {"accuracy": 0.95, "recall": 0.93, "f1": 0.94, "log_loss": 0.10, "support": {"a": 90, "b": 53}}
THRESHOLDS = {"accuracy": 0.90, "recall": 0.90, "f1": 0.90}


def test_params_diff_lists_only_changed_keys_by_dotted_path() -> None:
    base = {"seed": 1, "model": {"estimator": "lr", "hyperparameters": {"lr": {"C": 1.0, "max_iter": 100}}}}
    pr = {"seed": 1, "model": {"estimator": "lr", "hyperparameters": {"lr": {"C": 0.1, "max_iter": 100}}}}
    changes = params_diff(base, pr)
    assert [(c.key, c.base, c.pr, c.kind) for c in changes] == [("model.hyperparameters.lr.C", 1.0, 0.1, "changed")]


def test_params_diff_reports_added_and_removed_keys() -> None:
    changes = {c.key: c for c in params_diff({"a": 1, "gone": 2}, {"a": 1, "new": {"x": 3}})}
    assert changes["new.x"].kind == "added"
    assert changes["new.x"].base is MISSING
    assert changes["gone"].kind == "removed"
    assert changes["gone"].pr is MISSING
    assert set(changes) == {"new.x", "gone"}


def test_params_diff_without_base_params_lists_everything_as_added() -> None:
    assert {c.kind for c in params_diff(None, {"a": 1, "b": {"c": 2}})} == {"added"}


def test_scalar_metrics_drops_support_counts_and_non_numbers() -> None:
    assert scalar_metrics({**BASE, "note": "x", "flag": True}) == {
        "accuracy": 0.95,
        "recall": 0.93,
        "f1": 0.94,
        "log_loss": 0.10,
    }


def test_metric_rows_cover_new_removed_and_thresholded_metrics() -> None:
    pr = {"accuracy": 0.96, "recall": 0.85, "brier": 0.05}
    limits = {**THRESHOLDS, "roc_auc": 0.95}
    rules = [threshold(name, pr.get(name), limit) for name, limit in limits.items()]
    rows = {row.name: row for row in metric_rows(BASE, pr, rules)}
    assert (rows["accuracy"].base, rows["accuracy"].pr) == (0.95, 0.96)
    assert (rows["brier"].base, rows["brier"].pr) == (None, 0.05)  # new in the PR
    assert (rows["log_loss"].base, rows["log_loss"].pr) == (0.10, None)  # removed by the PR
    assert list(rows) == ["accuracy", "recall", "brier", "f1", "log_loss", "roc_auc"]
    assert rows["recall"].passed is False
    assert rows["roc_auc"].pr is None
    assert rows["roc_auc"].passed is False
    assert rows["brier"].passed is None


def test_a_threshold_on_rmse_is_a_ceiling_in_the_rows() -> None:
    (row,) = metric_rows(None, {"rmse": 4.5}, [threshold("rmse", 4.5, 5.0)])
    assert row.passed is True
    assert row.threshold is not None
    assert row.threshold.bound == "≤"


def policy(**fields: Any) -> EvaluateParams:
    return EvaluateParams.model_validate(fields)


@pytest.mark.parametrize(
    ("base", "pr", "change"),
    [
        ({"thresholds": {"accuracy": 0.9}}, {"thresholds": {"accuracy": 0.8}}, ("thresholds.accuracy", 0.9, 0.8, True)),
        (
            {"thresholds": {"accuracy": 0.8}},
            {"thresholds": {"accuracy": 0.9}},
            ("thresholds.accuracy", 0.8, 0.9, False),
        ),
        ({"thresholds": {"rmse": 4.0}}, {"thresholds": {"rmse": 5.0}}, ("thresholds.rmse", 4.0, 5.0, True)),
        (
            {"thresholds": {"log_loss": 0.3}},
            {"thresholds": {"log_loss": 0.2}},
            ("thresholds.log_loss", 0.3, 0.2, False),
        ),
        ({"thresholds": {"recall": 0.9}}, {}, ("thresholds.recall", 0.9, MISSING, True)),
        ({}, {"thresholds": {"recall": 0.9}}, ("thresholds.recall", MISSING, 0.9, False)),
        ({"tolerance": 0.02}, {"tolerance": 0.1}, ("tolerance", 0.02, 0.1, True)),
        ({"tolerance": 0.1}, {"tolerance": 0.02}, ("tolerance", 0.1, 0.02, False)),
        ({"slices": ["sex", "age"]}, {"slices": ["sex"]}, ("slices", ["sex", "age"], ["sex"], True)),
        ({"slices": ["sex"]}, {"slices": ["sex", "age"]}, ("slices", ["sex"], ["sex", "age"], False)),
        (
            {"max_slice_gap": {"recall": 0.1}},
            {"max_slice_gap": {"recall": 0.2}},
            ("max_slice_gap.recall", 0.1, 0.2, True),
        ),
        ({"max_slice_gap": {"rmse": 2.0}}, {"max_slice_gap": {"rmse": 1.0}}, ("max_slice_gap.rmse", 2.0, 1.0, False)),
        ({"max_slice_gap": {"recall": 0.1}}, {}, ("max_slice_gap.recall", 0.1, MISSING, True)),
        ({}, {"max_slice_gap": {"recall": 0.1}}, ("max_slice_gap.recall", MISSING, 0.1, False)),
    ],
)
def test_a_policy_change_is_marked_when_it_loosens_the_gate(
    base: dict[str, Any], pr: dict[str, Any], change: tuple[str, Any, Any, bool]
) -> None:
    key, old, new, loosened = change
    assert policy_changes(policy(**base), policy(**pr)) == [PolicyChange(f"evaluate.{key}", old, new, loosened)]


def test_an_unchanged_policy_has_no_changes() -> None:
    same = {"thresholds": {"accuracy": 0.9}, "tolerance": 0.02, "slices": ["sex"], "max_slice_gap": {"recall": 0.1}}
    assert policy_changes(policy(**same), policy(**same)) == []


def test_every_change_is_listed_in_the_policy_s_order() -> None:
    base = policy(thresholds={"accuracy": 0.9, "recall": 0.9}, tolerance=0.02, max_slice_gap={"recall": 0.1})
    pr = policy(thresholds={"accuracy": 0.8, "f1": 0.9}, tolerance=0.05, slices=["sex"])
    assert [(c.key, c.loosened) for c in policy_changes(base, pr)] == [
        ("evaluate.thresholds.accuracy", True),
        ("evaluate.thresholds.recall", True),
        ("evaluate.thresholds.f1", False),
        ("evaluate.tolerance", True),
        ("evaluate.slices", False),
        ("evaluate.max_slice_gap.recall", True),
    ]
