"""Compare a PR with its base branch: which params changed, how each metric moved, and the PR quality gate
(the threshold floors of `gate.check` plus the largest drop against the base that `evaluate.tolerance` allows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mltemplate import tasks
from mltemplate.metadata import scalar_metrics
from mltemplate.params import flatten
from mltemplate.pipeline.gate import check, check_gaps

EPSILON = 1e-9
"""Metrics are rounded to 6 digits; differences below this are float noise, not a change."""


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


def direction(metric: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 when unknown (a metric this template doesn't name).
    Per-group metrics (`slices.sex.F.rmse`) go the way of their metric; gaps between groups are lower-is-better."""
    return tasks.direction(metric)


@dataclass(frozen=True)
class MetricRow:
    name: str
    base: float | None
    pr: float | None
    threshold: float | None

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
        """Threshold check (a floor, or a ceiling for a lower-is-better metric); None when there is no threshold."""
        if self.threshold is None:
            return None
        return self.pr is not None and (
            self.pr >= self.threshold if direction(self.name) >= 0 else self.pr <= self.threshold
        )


def metric_rows(
    base: Mapping[str, Any] | None, pr: Mapping[str, Any] | None, thresholds: Mapping[str, float]
) -> list[MetricRow]:
    """One row per metric on either side (PR's order first, then the ones the PR removed)."""
    old, new = scalar_metrics(base), scalar_metrics(pr)
    names = list(new) + [name for name in old if name not in new]
    names += [name for name in thresholds if name not in names]
    return [MetricRow(name, old.get(name), new.get(name), thresholds.get(name)) for name in names]


def quality_gate(
    base: Mapping[str, Any] | None,
    pr: Mapping[str, Any],
    *,
    thresholds: Mapping[str, float],
    tolerance: float,
    base_label: str = "base",
    same_data: bool = True,
    max_slice_gap: Mapping[str, float] | None = None,
) -> list[str]:
    """Why the PR fails its quality gate (empty: it passes). A metric fails past its threshold (gate.check: a floor,
    or a ceiling for a lower-is-better metric), a slice column when its groups differ by more than `max_slice_gap`,
    and a higher-is-better metric when it is more than `tolerance` below the base branch's value (lower-is-better
    ones such as rmse or log_loss are in the data's units, where a fixed tolerance means nothing).
    When the PR changes the data set (`same_data` False) the two sides were scored on different held-out rows, so
    only the thresholds apply: a drop against the base would say nothing about the model."""
    checks = check(dict(pr), dict(thresholds)) + (check_gaps(pr, max_slice_gap) if max_slice_gap else [])
    failures = [
        f"`{c.metric}` is missing from the PR's metrics"
        if c.value is None
        else "`{}` {}".format(c.metric, c.reason().removeprefix(f"{c.metric} "))
        for c in checks
        if not c.passed
    ]
    if not same_data:
        return failures
    old, new = scalar_metrics(base), scalar_metrics(pr)
    for name in dict.fromkeys(m.name for m in tasks.ALL_METRICS.values() if m.higher_is_better):
        if name in old and name in new and old[name] - new[name] > tolerance + EPSILON:
            failures.append(
                f"`{name}` fell {old[name] - new[name]:.4f} behind {base_label} "
                f"({old[name]:.4f} -> {new[name]:.4f}); the tolerance is {tolerance:.4f}"
            )
    return failures
