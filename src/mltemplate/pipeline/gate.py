"""`make gate`: fail when a metric in metrics.json misses its threshold in params.yaml (evaluate.thresholds: a floor
for a higher-is-better metric, a ceiling for a lower-is-better one such as rmse), or when the gap between the groups
of a slice column exceeds evaluate.max_slice_gap."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mltemplate import tasks
from mltemplate.errors import CommandError
from mltemplate.metadata import read_metrics
from mltemplate.params import load_params
from mltemplate.paths import METRICS_FILE


@dataclass(frozen=True)
class Check:
    metric: str
    value: float | None
    threshold: float
    higher_is_better: bool = True

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold

    @property
    def bound(self) -> str:
        return ">=" if self.higher_is_better else "<="

    def reason(self) -> str:
        """Why the check failed, e.g. `rmse 4.2 is above its ceiling 4.0 by 0.2`."""
        if self.value is None:
            return f"{self.metric} is missing from {METRICS_FILE}"
        where, limit = ("below", "threshold") if self.higher_is_better else ("above", "ceiling")
        return (
            f"{self.metric} {self.value:.4f} is {where} its {limit} {self.threshold:.4f} "
            f"by {abs(self.threshold - self.value):.4f}"
        )


def _higher(name: str) -> bool:
    found = tasks.metric(name)
    return True if found is None else found.higher_is_better


def check(metrics: Mapping[str, Any], thresholds: Mapping[str, float]) -> list[Check]:
    """One check per threshold, in the metric's direction; a metric missing from `metrics` fails."""
    return [Check(name, metrics.get(name), limit, _higher(name)) for name, limit in sorted(thresholds.items())]


def check_gaps(metrics: Mapping[str, Any], max_gap: Mapping[str, float]) -> list[Check]:
    """One check per slice column and metric in `max_gap`: the gap between its groups (metrics.json `slice_gap`)
    must not exceed the limit. A slice column without the metric (undefined in every group) fails as missing."""
    gaps = metrics.get(tasks.SLICE_GAP)
    if not isinstance(gaps, Mapping):  # flattened keys, as the PR report's artifact carries metrics
        gaps = {}
        for key, value in metrics.items():
            if key.startswith(f"{tasks.SLICE_GAP}."):
                column, _, name = key.removeprefix(f"{tasks.SLICE_GAP}.").rpartition(".")
                gaps.setdefault(column, {})[name] = value
    if not gaps:
        return [Check(f"{tasks.SLICE_GAP}.{name}", None, limit, False) for name, limit in sorted(max_gap.items())]
    return [
        Check(f"{tasks.SLICE_GAP}.{column}.{name}", by_metric.get(name), limit, False)
        for column, by_metric in gaps.items()
        for name, limit in sorted(max_gap.items())
    ]


def main() -> None:
    params = load_params()
    metrics = read_metrics()
    checks = check(metrics, params.evaluate.thresholds) + check_gaps(metrics, params.evaluate.max_slice_gap)
    for c in checks:
        shown = "missing" if c.value is None else f"{c.value:.4f}"
        print(f"gate: {c.metric:<10} {shown:>8}  {c.bound} {c.threshold:.4f}  {'ok' if c.passed else 'FAIL'}")
    failed = [c for c in checks if not c.passed]
    if failed:
        raise CommandError("; ".join(c.reason() for c in failed))
    print(f"gate: all {len(checks)} thresholds met")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
