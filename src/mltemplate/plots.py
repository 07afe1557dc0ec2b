"""The one table of plots: every plot any task draws (its name, title, axes, DVC template and tasks), where its
points (plots/<name>.json, for `dvc plots`) and its PNG (for MLflow, the PR report and the model card) live, and the
one reader of a plot file. dvc.yaml's `plots:` section, evaluate, the report's artifact and the comment follow it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltemplate.metrics import Task
from mltemplate.paths import PLOTS_DIR


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    x: str
    y: str
    template: str
    """The DVC plot template that draws it (`simple`, `scatter`, or one of .dvc/plots/)."""
    tasks: tuple[Task, ...]

    @property
    def data(self) -> Path:
        """Its points, as `evaluate` writes them: {"<name>": [{"<x>": ..., "<y>": ...}, ...]}."""
        return PLOTS_DIR / f"{self.name}.json"

    @property
    def image(self) -> Path:
        return PLOTS_DIR / f"{self.name}.png"


_CLASSIFICATION: tuple[Task, ...] = ("binary", "multiclass")
_ALL: tuple[Task, ...] = ("binary", "multiclass", "regression")

PLOTS: tuple[Plot, ...] = (
    Plot("roc", "ROC", "fpr", "tpr", "simple", ("binary",)),
    Plot("precision_recall", "Precision-recall", "recall", "precision", "simple", ("binary",)),
    # confusion_counts: DVC's confusion template over counts (.dvc/plots/confusion_counts.json)
    Plot("confusion", "Confusion matrix", "predicted", "actual", "confusion_counts", _CLASSIFICATION),
    Plot("calibration", "Calibration", "mean_predicted", "fraction_positive", "simple", ("binary",)),
    # lines_by_class: DVC's simple template with one line per class (.dvc/plots/lines_by_class.json)
    Plot("roc_ovr", "ROC, one vs rest", "fpr", "tpr", "lines_by_class", ("multiclass",)),
    Plot("predicted_vs_actual", "Predicted vs actual", "actual", "predicted", "scatter", ("regression",)),
    Plot("residuals", "Residuals", "predicted", "residual", "scatter", ("regression",)),
    Plot(
        "importance", "Permutation importance (held-out split)", "importance", "feature", "bar_horizontal_sorted", _ALL
    ),
)
"""In the order the report and the card show them."""

BY_NAME: dict[str, Plot] = {plot.name: plot for plot in PLOTS}


def for_task(task: Task) -> tuple[Plot, ...]:
    """The plots `evaluate` writes for `task`, in table order."""
    return tuple(plot for plot in PLOTS if task in plot.tasks)


def parse_points(plot: Plot, text: str | bytes | None) -> list[dict[str, Any]] | None:
    """The rows of a plot file's text; None when it is absent or not what `evaluate` writes."""
    if text is None:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    rows = found.get(plot.name) if isinstance(found, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        return None
    return rows


def read_points(plot: Plot, root: Path = Path()) -> list[dict[str, Any]] | None:
    """The rows of `plot`'s file under `root`, or None when there is none (another task's plot, a failed run)."""
    path = root / plot.data
    return parse_points(plot, path.read_bytes()) if path.is_file() else None


def write_points(plot: Plot, rows: list[dict[str, Any]]) -> str:
    """The text of a plot file holding `rows`."""
    return json.dumps({plot.name: rows}, indent=1) + "\n"
