"""The PR report end to end: a real git repository with `main` and a PR branch that changes a hyperparameter,
the real pipeline on both, exactly the workflow's report step (`make report`, with real `bentoml serve` load runs),
then the comment job's step (`make comment`) on the artifact it wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mltemplate import plots
from mltemplate.dotted import flatten
from mltemplate.metrics import scalar_metrics
from mltemplate.params import load_params
from mltemplate.report import artifact
from mltemplate.report.sides import CURVE_NAMES
from tests.conftest import ROOT, nudged_hyperparameter, subprocess_env

pytestmark = pytest.mark.integration

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
NUDGE = nudged_hyperparameter(load_params(ROOT / "params.yaml"))
"""A hyperparameter of the estimator params.yaml chose, and a new value for it that changes the model."""


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def pr_repo(pipeline_repo: Path, dest: Path, *, key: str, value: object, commit_outputs: bool) -> Path:
    """A copy of the pipeline repo: `main` holds its reproduced outputs, branch `pr` edits params.yaml and, when
    `commit_outputs`, commits what `dvc repro` then produces (as a PR author should)."""
    repo = dest / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main: reproduced outputs")
    git(repo, "checkout", "-q", "-b", "pr")
    params = repo / "params.yaml"
    raw = yaml.safe_load(params.read_text(encoding="utf-8"))
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value
    params.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    if commit_outputs:
        subprocess.run(["dvc", "repro"], cwd=repo, env=subprocess_env(), check=True, capture_output=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pr: change a hyperparameter")
    # `make setup` is satisfied by this session's venv; RUN= below runs its tools straight from PATH.
    (repo / ".venv").mkdir(exist_ok=True)
    (repo / ".venv" / ".synced").touch()
    return repo


def make(repo: Path, target: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", target, "RUN=", *args],
        cwd=repo,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def make_report(repo: Path, tmp_path: Path, *flags: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    summary = tmp_path / "step-summary.md"
    head = git(repo, "rev-parse", "HEAD").strip()
    env = {"BASE": "main", "PR_NUMBER": "7", "HEAD_SHA": head, "GITHUB_STEP_SUMMARY": str(summary)}
    return make(repo, "report", f"REPORT_FLAGS={' '.join(flags)}", **env), summary


def test_report_and_comment_for_a_pr_that_changes_a_hyperparameter(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = pr_repo(pipeline_repo, tmp_path, key=NUDGE[0], value=NUDGE[1], commit_outputs=True)
    flags = ("--load-seconds", "1", "--rounds", "2", "--concurrency", "2")
    result, summary = make_report(repo, tmp_path, *flags)
    loaded = artifact.load(repo / "report")
    report = loaded.report

    assert report.stale == [], result.stderr
    assert report.failure is None
    base_params = yaml.safe_load(git(repo, "show", "main:params.yaml"))
    assert (report.base.params or {})[NUDGE[0]] == flatten(base_params)[NUDGE[0]]
    assert (report.pr.params or {})[NUDGE[0]] == NUDGE[1]
    base = json.loads(git(repo, "show", "main:metrics.json"))
    assert report.base.metrics == scalar_metrics(base)
    assert report.pr.metrics == scalar_metrics(json.loads((repo / "metrics.json").read_text()))
    assert report.pr.metrics != report.base.metrics, "the hyperparameter change did not change the metrics"
    assert report.serving is not None
    for side in (report.serving.base, report.serving.pr):  # the base model came from the DVC cache
        assert len(side.runs) == 2, side.reason
        assert all(run.requests > 0 and run.errors == 0 for run in side.runs)
    task = load_params(repo / "params.yaml").data.task
    drawn = {plot.name for plot in plots.for_task(task)}
    expected = {f"{side}_{name}.png" for side in ("base", "pr") for name in drawn}
    assert expected <= set(loaded.images) <= artifact.IMAGE_FILES  # the task's plots, both sides
    assert set(report.pr.curves) == drawn & set(CURVE_NAMES)
    assert (report.pr.confusion is not None) == ("confusion" in drawn)
    assert (report.pr_number, report.head_sha) == (7, git(repo, "rev-parse", "HEAD").strip())
    assert summary.read_text(encoding="utf-8") == (repo / "report" / "report.md").read_text(encoding="utf-8")

    shutil.move(repo / "report", tmp_path / "pr-report")  # the artifact, downloaded outside the trusted checkout
    git(repo, "checkout", "-q", "main")  # the comment job's checkout: the default branch
    trusted = make(repo, "verdict", HEAD_SHA=report.head_sha or "")
    assert (repo / "verdict" / artifact.DATA_FILE).is_file(), trusted.stderr
    rendered = make(
        repo, "comment", ARTIFACT=str(tmp_path / "pr-report"), VERDICT="verdict", HEAD_SHA=report.head_sha or ""
    )
    assert rendered.returncode == 0, rendered.stderr
    comment = (repo / "comment" / "comment.md").read_text(encoding="utf-8")
    status = json.loads((repo / "comment" / "status.json").read_text())
    assert ("```mermaid" in comment) == bool(drawn & set(CURVE_NAMES))  # the task's curves, as charts
    assert ("| actual / predicted |" in comment) == ("confusion" in drawn)
    assert "](" not in comment
    gate_failed = "Quality gate failed" in comment
    assert status["state"] == ("failure" if gate_failed else "success")
    assert result.returncode == (2 if gate_failed else 0), result.stderr
    assert "Self-reported" not in comment  # a params-only PR: numbers from the base's code
    shutil.copyfile(repo / "comment" / "comment.md", tmp_path / "sample-comment.md")


def test_report_names_stale_committed_outputs_and_fails_the_check(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = pr_repo(pipeline_repo, tmp_path, key=NUDGE[0], value=NUDGE[1], commit_outputs=False)
    result, _ = make_report(repo, tmp_path, "--no-load")
    report = artifact.load(repo / "report").report

    assert result.returncode != 0
    assert "dvc.lock" in report.stale
    assert "metrics.json" in report.stale
    assert any(path.startswith("plots/") for path in report.stale)
    assert "the committed outputs are not what the pipeline reproduces: " in result.stderr
    assert "### ❌ Stale committed outputs" in (repo / "report" / "report.md").read_text(encoding="utf-8")


def test_report_says_which_stage_failed_and_fails_the_check(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = pr_repo(pipeline_repo, tmp_path, key=NUDGE[0], value=-1, commit_outputs=False)
    result, _ = make_report(repo, tmp_path, "--no-load")
    loaded = artifact.load(repo / "report")
    failure = loaded.report.failure

    assert result.returncode != 0
    assert failure is not None
    assert (failure.command, failure.stage) == ("dvc repro", "train")
    assert NUDGE[0].split(".")[-1] in failure.tail  # the stage's own error is quoted
    assert loaded.report.pr.metrics is None
    assert not [name for name in loaded.images if name.startswith("pr_")]
    assert "error: `dvc repro` failed at stage train" in result.stderr
    assert "### ❌ Pipeline failed at stage <code>train</code>" in (repo / "report" / "report.md").read_text()
