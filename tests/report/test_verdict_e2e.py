"""The honest verdict end to end (`make report` in temporary repositories with a `main` and a PR branch, the base's
model reproduced from its commit as in a fresh CI checkout): both models are scored on the same held-out rows with
intervals; noise passes, a worse model fails on the tolerance naming the metric, a PR that appends data still gets
the comparison, a group that got worse fails even when the whole got better, and the intervals are seeded."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mltemplate import gate
from mltemplate.comparison import MIN_ROWS
from mltemplate.report import artifact, schema
from tests.conftest import push_to_local_dvc_remote, subprocess_env

pytestmark = pytest.mark.integration

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
Params = dict[str, Any]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def run(repo: Path, *args: str) -> None:
    result = subprocess.run(list(args), cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"


def edit_params(repo: Path, change: Callable[[Params], None]) -> None:
    path = repo / "params.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


def commit(repo: Path, message: str) -> None:
    run(repo, "dvc", "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def main_repo(pipeline_repo: Path, dest: Path, change: Callable[[Params], None] | None = None) -> Path:
    """A copy of the pipeline repo committed as `main` (after `change` to its params) with a DVC remote holding its
    data, then on branch `pr`, with the DVC cache emptied: the report must reproduce the base's model, as in a fresh
    CI checkout."""
    repo = dest / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    if change is not None:
        edit_params(repo, change)
    commit(repo, "main")
    push_to_local_dvc_remote(repo, dest / "dvc-remote", "data.dvc")  # main's data only: its model is reproduced
    git(repo, "commit", "-qam", "A DVC remote")
    git(repo, "checkout", "-q", "-b", "pr")
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
    (repo / ".venv").mkdir(exist_ok=True)  # `make setup` is satisfied by this session's venv (RUN= below)
    (repo / ".venv" / ".synced").touch()
    return repo


def make_report(repo: Path) -> tuple[subprocess.CompletedProcess[str], schema.Report]:
    head = git(repo, "rev-parse", "HEAD").strip()
    result = subprocess.run(
        ["make", "report", "RUN=", "REPORT_FLAGS=--no-load"],
        cwd=repo,
        env=subprocess_env(BASE="main", PR_NUMBER="3", HEAD_SHA=head),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert (repo / "report" / artifact.DATA_FILE).is_file(), f"no report written:\n{result.stdout}\n{result.stderr}"
    return result, artifact.load(repo / "report").report


def least_important_alone(repo: Path) -> Callable[[Params], None]:
    """A params change that keeps only the input the model needs least (by its permutation importance): any
    estimator of any task gets clearly worse, and the base can still score the PR's rows."""
    rows = json.loads((repo / "plots" / "importance.json").read_text())["importance"]
    weakest = min(rows, key=lambda row: (row["importance"], row["feature"]))["feature"]
    header = pd.read_csv(repo / yaml.safe_load((repo / "params.yaml").read_text())["data"]["raw"], nrows=0).columns

    def change(raw: Params) -> None:
        data = raw["data"]
        data["features"] = [weakest]
        data["categorical"] = [c for c in data.get("categorical", []) if c == weakest]
        data["drop"] = [c for c in header if c not in {weakest, data["target"]}]

    return change


def no_thresholds(raw: Params) -> None:
    raw["evaluate"] = {**raw.get("evaluate", {}), "thresholds": {}, "max_slice_gap": {}}


def test_a_pr_that_changes_only_the_seed_is_within_the_tolerance_and_passes(
    pipeline_repo: Path, tmp_path: Path
) -> None:
    # Another seed is another split and another fit: on a large or low-noise data set the paired interval may tell the
    # two models apart (an honest "worse" by a hair), but never by more than the tolerance.
    repo = main_repo(pipeline_repo, tmp_path, no_thresholds)  # the PR's own split decides no threshold here
    edit_params(repo, lambda raw: raw.update(seed=raw["seed"] + 1))
    commit(repo, "pr: another seed")
    result, report = make_report(repo)

    comparison = report.comparison
    assert comparison is not None
    assert result.returncode == 0, result.stderr
    if comparison.reason is not None:  # a small data set: too few rows are held out by both splits
        assert f"{MIN_ROWS} are needed" in comparison.reason
        return
    assert 0 < comparison.rows < len(pd.read_csv(repo / "data" / "prepared" / "test.csv"))
    allowed = yaml.safe_load((repo / "params.yaml").read_text())["evaluate"]["tolerance"]
    differences = [d.to_difference() for d in comparison.differences]
    assert differences
    beyond = {d.metric: d for d in differences if not gate.tolerance(d, allowed).passed}
    assert beyond == {}, beyond
    assert "reproduced from" in comparison.base_from


def test_a_clearly_worse_pr_fails_on_the_tolerance_naming_the_metric_with_seeded_intervals(
    pipeline_repo: Path, tmp_path: Path
) -> None:
    repo = main_repo(pipeline_repo, tmp_path, no_thresholds)
    edit_params(repo, least_important_alone(repo))
    commit(repo, "pr: one weak input")
    result, report = make_report(repo)

    assert report.comparison is not None
    assert report.comparison.reason is None
    worse = [d.to_difference() for d in report.comparison.differences if d.to_difference().verdict == "worse"]
    assert worse, report.comparison
    for d in worse:  # the whole interval lies on the worse side of zero
        assert (d.high < 0) if d.sign > 0 else (d.low > 0)
    assert result.returncode != 0
    assert "confidently worse than the base" in result.stderr
    assert any(f"{d.metric} is confidently worse" in result.stderr for d in worse)

    _, repeated = make_report(repo)  # the same inputs: the same intervals
    assert repeated.comparison == report.comparison
    rendered = subprocess.run(
        ["make", "comment", "RUN=", "ARTIFACT=report", "COMMENT_DIR=comment"],
        cwd=repo,
        env=subprocess_env(HEAD_SHA=report.head_sha or ""),
        capture_output=True,
        text=True,
    )
    assert rendered.returncode == 0, rendered.stderr
    comment = (repo / "comment" / "comment.md").read_text(encoding="utf-8")
    d = worse[0]
    assert f"[{d.low:+.4f}, {d.high:+.4f}]" in comment
    assert f"**{report.comparison.rows}** held-out rows that neither was trained on" in comment
    assert json.loads((repo / "comment" / "status.json").read_text())["state"] == "failure"


def test_a_pr_that_appends_rows_is_compared_on_the_same_rows_and_fails_when_worse(
    pipeline_repo: Path, tmp_path: Path
) -> None:
    repo = main_repo(pipeline_repo, tmp_path, no_thresholds)
    raw_path = repo / yaml.safe_load((repo / "params.yaml").read_text())["data"]["raw"]
    data = pd.read_csv(raw_path)
    target = yaml.safe_load((repo / "params.yaml").read_text())["data"]["target"]
    new = data.sample(frac=0.3, random_state=0).copy()
    numeric = [c for c in new.columns if c != target and pd.api.types.is_numeric_dtype(new[c])]
    new[numeric] = new[numeric] * 1.001  # new rows (other content), as production would send
    pd.concat([data, new]).to_csv(raw_path, index=False, lineterminator="\n")
    run(repo, "python", "-m", "mltemplate.pipeline.data", "track", str(raw_path.relative_to(repo)))
    edit_params(repo, least_important_alone(repo))
    commit(repo, "pr: appended rows and a weak model")
    result, report = make_report(repo)

    assert report.pr.data_md5 != report.base.data_md5
    assert report.comparison is not None
    assert report.comparison.reason is None, report.comparison.reason
    assert report.comparison.rows > 0
    assert result.returncode != 0
    assert "confidently worse than the base" in result.stderr


def groups_data(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Group A (3 in 4 rows) follows x_a, group B follows x_b: a model on x_a is better overall, worse on B."""
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.75, "A", "B")
    x_a, x_b = rng.normal(size=n).round(4), rng.normal(size=n).round(4)
    y = np.where(np.where(group == "A", x_a, x_b) > 0, "yes", "no")
    return pd.DataFrame({"x_a": x_a, "x_b": x_b, "g": group, "y": y})


def test_a_pr_better_overall_but_worse_in_one_group_fails_naming_the_group(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    groups_data().to_csv(repo / "data" / "raw" / "groups.csv", index=False, lineterminator="\n")
    run(repo, "python", "-m", "mltemplate.pipeline.data", "track", "data/raw/groups.csv")

    def own(raw: Params) -> None:
        raw["data"] = {
            "raw": "data/raw/groups.csv",
            "target": "y",
            "positive_class": "yes",
            "task": "binary",
            "features": ["x_b"],
            "categorical": [],
            "drop": ["x_a", "g"],
        }
        raw["model"] = {"estimator": "logistic_regression", "hyperparameters": {}}
        raw["evaluate"] = {"thresholds": {}, "tolerance": 0.02, "slices": ["g"], "max_slice_gap": {}}
        raw["monitor"] = {**raw.get("monitor", {}), "thresholds": {}}

    base = main_repo(repo, tmp_path / "groups", own)
    edit_params(base, lambda raw: raw["data"].update(features=["x_a"], drop=["x_b", "g"]))
    commit(base, "pr: the input that serves most rows")
    result, report = make_report(base)

    assert report.comparison is not None
    overall = {d.metric: d.to_difference() for d in report.comparison.differences}
    assert overall["accuracy"].verdict == "better"
    group_b = next(g for g in report.comparison.groups if (g.column, g.value) == ("g", "B"))
    assert {d.metric: d.to_difference().verdict for d in group_b.differences}["accuracy"] == "worse"
    assert result.returncode != 0
    assert "slices.g.B.accuracy is confidently worse than the base" in result.stderr
