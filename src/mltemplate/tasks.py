"""The learning tasks params.yaml may name (`data.task`) and, per task, the metrics `evaluate` writes with the
direction in which each one improves: the gate, the PR comparison and the model card all read it from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Metric:
    """A metric's name, whether higher is better, and whether it lies in [0, 1] (then a threshold must too, and
    `evaluate.tolerance`, an absolute drop, means the same for any data set)."""

    name: str
    higher_is_better: bool
    unit_interval: bool

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is better."""
        return 1 if self.higher_is_better else -1

    def meets(self, value: float, threshold: float) -> bool:
        """A threshold is a floor for a higher-is-better metric and a ceiling otherwise."""
        return value >= threshold if self.higher_is_better else value <= threshold

    @property
    def bound(self) -> str:
        """How a threshold reads: `≥` for a floor, `≤` for a ceiling."""
        return "≥" if self.higher_is_better else "≤"


def _higher(name: str) -> Metric:
    return Metric(name, higher_is_better=True, unit_interval=True)


def _lower(name: str) -> Metric:
    return Metric(name, higher_is_better=False, unit_interval=False)


METRICS: dict[Task, tuple[Metric, ...]] = {
    "binary": (*map(_higher, ("accuracy", "precision", "recall", "f1", "roc_auc")), _lower("log_loss")),
    "multiclass": (
        *map(_higher, ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted")),
        _lower("log_loss"),
    ),
    # r2 is at most 1 but unbounded below; an absolute tolerance on it still reads the same across data sets.
    "regression": (
        _lower("rmse"),
        _lower("mae"),
        Metric("r2", higher_is_better=True, unit_interval=False),
        _lower("mape"),
    ),
}
"""Every scalar metric `evaluate` writes for each task, in the order it writes them."""

IMPORTANCE_SCORING: dict[Task, str] = {
    "binary": "roc_auc",
    "multiclass": "f1_macro",
    "regression": "neg_root_mean_squared_error",
}
"""The scikit-learn scorer whose drop permutation importance measures (for regression: the rise in RMSE)."""

PLOTS: dict[Task, tuple[str, ...]] = {
    "binary": ("roc", "precision_recall", "confusion", "calibration", "importance"),
    "multiclass": ("confusion", "roc_ovr", "importance"),
    "regression": ("predicted_vs_actual", "residuals", "importance"),
}
"""The plots `evaluate` writes for each task (names of paths.PLOT_DATA), in the order the report shows them."""

ALL_METRICS: dict[str, Metric] = {m.name: m for metrics in METRICS.values() for m in metrics}


def is_classification(task: Task) -> bool:
    return task != "regression"


def metric(name: str) -> Metric | None:
    """The metric named `name`, or the one a dotted key ends with (`slices.sex.F.rmse`, `gap.f1`); None if unknown."""
    return ALL_METRICS.get(name) or ALL_METRICS.get(name.rsplit(".", 1)[-1])


def names(task: Task) -> list[str]:
    return [m.name for m in METRICS[task]]


SLICE_GAP = "slice_gap"
"""metrics.json group of the largest gap between per-group values of each metric (lower is better)."""


def direction(name: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 for a metric no task names."""
    if name.startswith(f"{SLICE_GAP}."):
        return -1
    found = metric(name)
    return 0 if found is None else found.sign
