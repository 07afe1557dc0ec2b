"""What a PR changes against its base branch, as data: which params changed, which changes loosen the gate's
policy, and the rows of metrics with the gate's threshold on each. How the models compare on the same rows is
mltemplate.comparison's; the verdict is mltemplate.gate's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mltemplate.dotted import flatten
from mltemplate.gate import Criterion
from mltemplate.metrics import direction, scalar_metrics
from mltemplate.params import EvaluateParams


class Missing:
    """Marks a param or metric that one side does not have."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


@dataclass(frozen=True)
class ParamChange:
    key: str
    base: Any
    pr: Any

    @property
    def kind(self) -> str:
        if self.base is MISSING:
            return "added"
        if self.pr is MISSING:
            return "removed"
        return "changed"


def params_diff(base: Mapping[str, Any] | None, pr: Mapping[str, Any]) -> list[ParamChange]:
    """Only the params that differ (added, removed or changed), by dotted key; base None means no params yet."""
    old, new = flatten(base or {}), flatten(pr)
    keys = list(new) + [key for key in old if key not in new]
    return [
        ParamChange(key, old.get(key, MISSING), new.get(key, MISSING))
        for key in keys
        if old.get(key, MISSING) != new.get(key, MISSING)
    ]


@dataclass(frozen=True)
class MetricRow:
    name: str
    base: float | None
    pr: float | None
    threshold: Criterion | None = None
    """The gate's threshold rule on this metric, when it has one."""

    @property
    def passed(self) -> bool | None:
        """Whether the PR meets the metric's threshold; None when there is no threshold."""
        return None if self.threshold is None else self.threshold.passed


def metric_rows(
    base: Mapping[str, Any] | None, pr: Mapping[str, Any] | None, thresholds: Sequence[Criterion] = ()
) -> list[MetricRow]:
    """One row per metric on either side (PR's order first, then the ones the PR removed, then thresholded metrics
    neither side has), each with the gate's threshold rule on it."""
    old, new = scalar_metrics(base), scalar_metrics(pr)
    by_name = {c.metric: c for c in thresholds}
    names = list(new) + [name for name in old if name not in new]
    names += [name for name in by_name if name not in names]
    return [MetricRow(name, old.get(name), new.get(name), by_name.get(name)) for name in names]


@dataclass(frozen=True)
class PolicyChange:
    """A change to the gate's policy (`evaluate`): `loosened` when it lets more through (a lower floor, a higher
    ceiling, a larger tolerance or slice gap, a threshold, gap or slice column taken away)."""

    key: str
    base: Any
    pr: Any
    loosened: bool


def _limits(kind: str, base: Mapping[str, float], pr: Mapping[str, float]) -> list[PolicyChange]:
    changes = []
    for name in list(base) + [n for n in pr if n not in base]:
        old, new = base.get(name, MISSING), pr.get(name, MISSING)
        if old == new:
            continue
        if isinstance(old, float) and isinstance(new, float):
            looser = new > old if kind == "max_slice_gap" or direction(name) < 0 else new < old
        else:
            looser = new is MISSING  # a limit taken away
        changes.append(PolicyChange(f"evaluate.{kind}.{name}", old, new, looser))
    return changes


def policy_changes(base: EvaluateParams, pr: EvaluateParams) -> list[PolicyChange]:
    """Every change a PR makes to the policy its gate is judged by, each marked when it loosens it."""
    changes = _limits("thresholds", base.thresholds, pr.thresholds)
    if base.tolerance != pr.tolerance:
        changes.append(PolicyChange("evaluate.tolerance", base.tolerance, pr.tolerance, pr.tolerance > base.tolerance))
    if base.slices != pr.slices:
        gone = bool(set(base.slices) - set(pr.slices))
        changes.append(PolicyChange("evaluate.slices", list(base.slices), list(pr.slices), gone))
    return changes + _limits("max_slice_gap", base.max_slice_gap, pr.max_slice_gap)
