"""`make gate`: fail when a metric in metrics.json is below its floor in params.yaml (evaluate.thresholds)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from mltemplate.errors import CommandError
from mltemplate.metadata import read_metrics
from mltemplate.params import load_params
from mltemplate.paths import METRICS_FILE


@dataclass(frozen=True)
class Check:
    metric: str
    value: float | None
    threshold: float

    @property
    def passed(self) -> bool:
        return self.value is not None and self.value >= self.threshold


def check(metrics: dict[str, Any], thresholds: dict[str, float]) -> list[Check]:
    """One check per threshold; a metric missing from `metrics` fails."""
    return [Check(name, metrics.get(name), floor) for name, floor in sorted(thresholds.items())]


def main() -> None:
    checks = check(read_metrics(), load_params().evaluate.thresholds)
    for c in checks:
        shown = "missing" if c.value is None else f"{c.value:.4f}"
        print(f"gate: {c.metric:<10} {shown:>8}  >= {c.threshold:.4f}  {'ok' if c.passed else 'FAIL'}")
    failed = [c for c in checks if not c.passed]
    if failed:
        raise CommandError(
            "; ".join(
                f"{c.metric} is missing from {METRICS_FILE}"
                if c.value is None
                else f"{c.metric} {c.value:.4f} is below its threshold {c.threshold:.4f} by {c.threshold - c.value:.4f}"
                for c in failed
            )
        )
    print(f"gate: all {len(checks)} thresholds met")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
