"""The one table of plots: its files, its reader, and dvc.yaml's `plots:` section."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mltemplate import metrics, plots
from tests.conftest import ROOT


def test_dvc_yaml_draws_exactly_the_table_s_plots_with_its_titles_axes_and_templates() -> None:
    listed = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    drawn = {path: spec for entry in listed for path, spec in entry.items()}
    assert drawn == {
        plot.data.as_posix(): {"title": plot.title, "template": plot.template, "x": plot.x, "y": plot.y}
        for plot in plots.PLOTS
    }


@pytest.mark.parametrize("task", metrics.TASKS)
def test_every_task_draws_its_importance_last(task: metrics.Task) -> None:
    assert plots.for_task(task)[-1].name == "importance"


@pytest.mark.parametrize("text", [None, b"not json", b"{}", b'{"roc": "x"}', b'{"roc": [1, 2]}', b"[1]"])
def test_a_plot_file_it_cannot_read_reads_as_none(text: bytes | None) -> None:
    assert plots.parse_points(plots.BY_NAME["roc"], text) is None


def test_points_round_trip_through_the_file_text(tmp_path: Path) -> None:
    plot = plots.BY_NAME["roc"]
    rows = [{"fpr": 0.0, "tpr": 0.5}]
    (tmp_path / plot.data).parent.mkdir()
    (tmp_path / plot.data).write_text(plots.write_points(plot, rows))
    assert plots.read_points(plot, tmp_path) == rows
    assert plots.read_points(plots.BY_NAME["residuals"], tmp_path) is None
