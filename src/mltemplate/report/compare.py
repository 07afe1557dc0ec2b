"""Compare a PR with its base branch: which params changed and how each metric moved (the verdict on them is the
gate's: mltemplate.gate)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mltemplate.dotted import flatten
from mltemplate.gate import EPSILON, Criterion
from mltemplate.metrics import direction, scalar_metrics


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
    def delta(self) -> float | None:
        return None if self.base is None or self.pr is None else self.pr - self.base

    @property
    def verdict(self) -> str:
        """better | worse | same | changed (direction unknown) | new | removed."""
        if self.base is None:
            return "new"
        if self.pr is None:
            return "removed"
        delta = self.pr - self.base
        if abs(delta) <= EPSILON:
            return "same"
        sign = direction(self.name)
        if sign == 0:
            return "changed"
        return "better" if delta * sign > 0 else "worse"

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
