"""The one quality gate. Whether metrics meet `evaluate.thresholds` (a floor for a higher-is-better metric, a
ceiling for a lower-is-better one such as rmse), whether the groups of each `evaluate.slices` column stay within
`evaluate.max_slice_gap` of each other, and whether a candidate fell more than `evaluate.tolerance` behind a base:
`make gate`, the PR report and its trusted comment, `make publish`, the model card and the monitor all ask `judge`
(or, for one metric, `threshold`). Every name in a verdict comes from the policy, never from the metrics' keys."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mltemplate.metrics import ALL_METRICS, SLICE_GAP, read_metrics, scalar_metrics
from mltemplate.params import EvaluateParams, load_params

EPSILON = 1e-9
"""Metrics are rounded to 6 digits; differences below this are float noise, not a change."""

Kind = Literal["threshold", "slice_gap", "tolerance"]


@dataclass(frozen=True)
class Criterion:
    """One rule of the gate applied to one metric: its value (None: missing), its limit and which way is good.
    A tolerance rule's value is how far the candidate fell behind the base (its shortfall), under a ceiling."""

    kind: Kind
    metric: str
    value: float | None
    limit: float
    higher_is_better: bool
    compared: tuple[float, float] | None = None
    """tolerance: the base's and the candidate's values."""

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        if self.higher_is_better:
            return self.value >= self.limit - (EPSILON if self.kind == "tolerance" else 0.0)
        return self.value <= self.limit + (EPSILON if self.kind == "tolerance" else 0.0)

    @property
    def bound(self) -> str:
        """How the limit reads: `≥` for a floor, `≤` for a ceiling."""
        return "≥" if self.higher_is_better else "≤"

    def reason(self, name: Callable[[str], str] = str) -> str:
        """Why the rule failed, in words, with the metric's name as `name` shows it:
        `rmse 4.2000 is above its ceiling 4.0000 by 0.2000`."""
        metric = name(self.metric)
        if self.value is None:
            return f"{metric} is missing from the metrics"
        if self.kind == "tolerance" and self.compared is not None:
            base, candidate = self.compared
            return (
                f"{metric} fell {self.value:.4f} behind the base ({base:.4f} -> {candidate:.4f}); "
                f"the tolerance is {self.limit:.4f}"
            )
        if self.kind == "slice_gap":
            return (
                f"{metric} {self.value:.4f} is above its largest allowed gap {self.limit:.4f} "
                f"by {self.value - self.limit:.4f}"
            )
        where, limit = ("below", "threshold") if self.higher_is_better else ("above", "ceiling")
        by = abs(self.limit - self.value)
        return f"{metric} {self.value:.4f} is {where} its {limit} {self.limit:.4f} by {by:.4f}"


@dataclass(frozen=True)
class Verdict:
    criteria: tuple[Criterion, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def of(self, kind: Kind) -> list[Criterion]:
        return [c for c in self.criteria if c.kind == kind]


def _higher(name: str) -> bool:
    found = ALL_METRICS.get(name)
    return True if found is None else found.higher_is_better


def threshold(name: str, value: float | None, limit: float) -> Criterion:
    """`name` against its floor (higher is better) or ceiling (lower is better)."""
    return Criterion("threshold", name, value, limit, _higher(name))


def judge(
    metrics: Mapping[str, Any],
    policy: EvaluateParams,
    *,
    base: Mapping[str, Any] | None = None,
) -> Verdict:
    """Every rule of `policy` applied to `metrics` (as evaluate writes them, nested or flattened): each threshold,
    each slice column's gap for each metric in max_slice_gap, and, when `base` is given (metrics measured on the
    same held-out rows), the tolerance on each higher-is-better metric both sides have (errors such as rmse and
    log_loss are in the data's units, where a fixed tolerance means nothing)."""
    flat = scalar_metrics(metrics)
    criteria = [threshold(name, flat.get(name), limit) for name, limit in sorted(policy.thresholds.items())]
    for column in policy.slices:
        for name, limit in sorted(policy.max_slice_gap.items()):
            key = f"{SLICE_GAP}.{column}.{name}"
            criteria.append(Criterion("slice_gap", key, flat.get(key), limit, higher_is_better=False))
    if base is not None:
        old = scalar_metrics(base)
        for found in dict.fromkeys(m for m in ALL_METRICS.values() if m.higher_is_better):
            if found.name in old and found.name in flat:
                shortfall = round(old[found.name] - flat[found.name], 12)
                criteria.append(
                    Criterion(
                        "tolerance",
                        found.name,
                        shortfall,
                        policy.tolerance,
                        higher_is_better=False,
                        compared=(old[found.name], flat[found.name]),
                    )
                )
    return Verdict(tuple(criteria))


def main() -> None:
    from mltemplate.errors import CommandError

    verdict = judge(read_metrics(), load_params().evaluate)
    for c in verdict.criteria:
        shown = "missing" if c.value is None else f"{c.value:.4f}"
        bound = ">=" if c.bound == "≥" else "<="
        print(f"gate: {c.metric:<10} {shown:>8}  {bound} {c.limit:.4f}  {'ok' if c.passed else 'FAIL'}")
    if not verdict.passed:
        raise CommandError("; ".join(c.reason() for c in verdict.failed))
    print(f"gate: all {len(verdict.criteria)} thresholds met")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
