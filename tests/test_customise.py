"""docs/customise.md works as written: each of its recipes (an estimator, a metric, a plot, a feature) applied to a
scratch copy of the repository, the pipeline run there, and the tests that check that kind of change run there too."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, copy_repo, run

pytestmark = [pytest.mark.integration, pytest.mark.template]

GUIDE = ROOT / "docs/customise.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def recipes() -> dict[str, str]:
    """The guide's sections by heading (`an estimator`, ...)."""
    parts = re.split(r"^## Add ", GUIDE.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    return {part.split("\n", 1)[0]: part for part in parts}


def merge(into: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        into[key] = merge(into.get(key) or {}, value) if isinstance(value, dict) else value
    return into


def apply(recipe: str, repo: Path, *, params: bool = True) -> None:
    """Apply each block that names a file (`apply=<path>` with `before`, `after` or `replace` a line) or, unless
    `params` is false, params."""
    for _, info, body in BLOCK.findall(recipe):
        words = shlex.split(info)
        if words == ["params"]:
            if not params:
                continue
            path = repo / "params.yaml"
            path.write_text(yaml.safe_dump(merge(yaml.safe_load(path.read_text()), yaml.safe_load(body))))
            continue
        spec = dict(word.split("=", 1) for word in words)
        if "apply" not in spec:
            continue  # a command or an illustration
        path = repo / spec["apply"]
        lines = path.read_text().splitlines(keepends=True)
        (how, anchor), *_ = ((k, v) for k, v in spec.items() if k != "apply")
        at = next((i for i, line in enumerate(lines) if line.rstrip("\n") == anchor), None)
        assert at is not None, f"docs/customise.md: {spec['apply']} has no line {anchor!r}"
        new = body.splitlines(keepends=True)
        lines[at : at + 1] = {"before": [*new, lines[at]], "after": [lines[at], *new], "replace": new}[how]
        path.write_text("".join(lines))


def customised(tmp_path: Path, name: str, *, params: bool = True) -> tuple[Path, dict[str, str]]:
    """A scratch copy with the recipe applied and the pipeline run on it, and the environment that runs its code."""
    repo = copy_repo(tmp_path / "repo")
    apply(recipes()[name], repo, params=params)
    env = {"PYTHONPATH": str(repo / "src")}  # the copy's package, not this checkout's
    run([sys.executable, "-m", "mltemplate.pipeline.data"], cwd=repo, **env)
    run(["dvc", "repro"], cwd=repo, **env)
    return repo, env


def task(repo: Path) -> str:
    return str(yaml.safe_load((repo / "params.yaml").read_text())["data"]["task"])


def test_an_estimator_is_one_registry_entry(tmp_path: Path) -> None:
    # The recipe's LightGBM entry is a classifier: a regression project adds the entry but keeps its estimator.
    classifies = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["task"] != "regression"
    repo, env = customised(tmp_path, "an estimator", params=classifies)
    if classifies:
        assert json.loads((repo / "models/metadata.json").read_text())["estimator"] == "lightgbm"
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_estimators.py"], cwd=repo, **env)


def test_a_metric_is_one_table_entry_and_its_score(tmp_path: Path) -> None:
    repo, env = customised(tmp_path, "a metric")
    if task(repo) != "regression":
        assert "balanced_accuracy" in json.loads((repo / "metrics.json").read_text())
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_metrics.py"], cwd=repo, **env)


def test_a_plot_is_one_table_row_its_points_and_its_dvc_row(tmp_path: Path) -> None:
    repo, env = customised(tmp_path, "a plot")
    if task(repo) == "binary":
        assert (repo / "plots/score_histogram.json").is_file()
        assert (repo / "plots/score_histogram.png").is_file()
    tests = ["tests/test_plots.py", "tests/pipeline/test_evaluate.py"]
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=repo, **env)


def test_a_feature_is_computed_inside_the_saved_model(tmp_path: Path) -> None:
    repo, env = customised(tmp_path, "a feature")
    importance = json.loads((repo / "plots/importance.json").read_text())["importance"]
    assert "missing_inputs" not in {row["feature"] for row in importance}  # scored on the raw columns
    changed = subprocess.run(["git", "status", "--porcelain", "dvc.lock"], cwd=repo, capture_output=True, text=True)
    assert changed.stdout.strip(), "features.py changed, yet train did not run again"
    tests = ["tests/test_features.py", "tests/test_model.py"]
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=repo, **env)
