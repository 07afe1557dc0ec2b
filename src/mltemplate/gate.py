"""The one quality gate. Whether metrics meet `evaluate.thresholds` (a floor for a higher-is-better metric, a
ceiling for a lower-is-better one such as rmse), whether the groups of each `evaluate.slices` column stay within
`evaluate.max_slice_gap` of each other, and, given a comparison of the candidate with a base on the same rows
(mltemplate.comparison), whether it is confidently worse than the base by more than `evaluate.tolerance`, overall or
in a group: `make gate`, the PR report and its trusted comment, `make publish`, the model card and the monitor all
ask `judge` (or, for one metric, `threshold`). The names of thresholds and slice gaps come from the policy, never
from the metrics' keys; a group's value comes from the data and is rendered as untrusted text.

The tolerance rule: a metric fails when the whole confidence interval of (candidate - base) lies beyond the
tolerance on the worse side, i.e. the candidate is confidently worse by more than the tolerance. The tolerance is in
the metric's units for metrics in [0, 1] and r2 (0.02 = two points of accuracy), and a fraction of the base's value
for errors (rmse, mae, mape, log_loss: 0.02 = 2% more error). A change within noise never fails; a regression
larger than the tolerance fails once there are rows enough to show it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mltemplate.comparison import Comparison, Difference
from mltemplate.metrics import ALL_METRICS, SLICE_GAP, SLICES, read_metrics, scalar_metrics
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
    difference: Difference | None = None
    """tolerance: the comparison with the base the rule judged."""

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
        if self.kind == "tolerance" and self.difference is not None:
            d = self.difference
            return (
                f"{metric} is confidently worse than the base: {d.base:.4f} -> {d.candidate:.4f}, the 95% interval "
                f"of the difference is [{d.low:+.4f}, {d.high:+.4f}], beyond the tolerance of {self.limit:.4f}"
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
    comparison: Comparison | None = None
    """What the tolerance rules judged; None (or one with a reason) when there was no comparison to judge."""

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


def allowed_shortfall(name: str, base: float, tolerance: float) -> float:
    """How much worse than `base` a candidate may be on `name`: `tolerance` itself for metrics in [0, 1] and r2,
    that fraction of the base's value for errors (lower is better, in the data's units)."""
    found = ALL_METRICS.get(name.rsplit(".", 1)[-1])
    return tolerance if found is None or found.higher_is_better else tolerance * abs(base)


def tolerance(difference: Difference, limit: float, *, name: str | None = None) -> Criterion:
    """The tolerance rule on one difference: its value is the least shortfall the interval allows (how much worse
    the candidate is at least), under a ceiling of the allowed shortfall."""
    most = difference.improvement[1]
    return Criterion(
        "tolerance",
        name or difference.metric,
        round(-most, 12),
        allowed_shortfall(difference.metric, difference.base, limit),
        higher_is_better=False,
        difference=difference,
    )


def judge(metrics: Mapping[str, Any], policy: EvaluateParams, *, comparison: Comparison | None = None) -> Verdict:
    """Every rule of `policy` applied to `metrics` (as evaluate writes them, nested or flattened): each threshold,
    each slice column's gap for each metric in max_slice_gap, and, when `comparison` holds one, the tolerance on
    each metric and on each judged group of each of the policy's slice columns (too small a group is not judged)."""
    flat = scalar_metrics(metrics)
    criteria = [threshold(name, flat.get(name), limit) for name, limit in sorted(policy.thresholds.items())]
    for column in policy.slices:
        for name, limit in sorted(policy.max_slice_gap.items()):
            key = f"{SLICE_GAP}.{column}.{name}"
            criteria.append(Criterion("slice_gap", key, flat.get(key), limit, higher_is_better=False))
    if comparison is not None and comparison.available:
        criteria += [tolerance(d, policy.tolerance) for d in comparison.differences if d.measurable]
        for group in comparison.groups:  # the policy's slice columns only: a column name comes from the data
            for d in group.differences if group.judged and group.column in policy.slices else ():
                if d.measurable:
                    key = f"{SLICES}.{group.column}.{group.value}.{d.metric}"
                    criteria.append(tolerance(d, policy.tolerance, name=key))
    return Verdict(tuple(criteria), comparison)


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
