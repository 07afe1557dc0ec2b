"""The PR report end to end: a real git repository with `main` and a PR branch that changes a hyperparameter,
the real pipeline on both, and exactly the workflow's report step (`make report`), with a real `bentoml serve`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import subprocess_env

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n"
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def pr_repo(pipeline_repo: Path, dest: Path, *, old: str, new: str) -> Path:
    """A copy of the pipeline repo: `main` holds its reproduced outputs, branch `pr` edits params.yaml."""
    repo = dest / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main: reproduced outputs")
    git(repo, "checkout", "-q", "-b", "pr")
    params = repo / "params.yaml"
    text = params.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in params.yaml"
    params.write_text(text.replace(old, new, 1), encoding="utf-8")
    git(repo, "commit", "-qam", "pr: change a hyperparameter")
    # `make setup` is satisfied by this session's venv; RUN= below runs its tools straight from PATH.
    (repo / ".venv").mkdir(exist_ok=True)
    (repo / ".venv" / ".synced").touch()
    return repo


def make_report(repo: Path, tmp_path: Path, *flags: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    summary = tmp_path / "step-summary.md"
    env = subprocess_env(BASE="main", PR_NUMBER="7", GITHUB_STEP_SUMMARY=str(summary))
    result = subprocess.run(
        ["make", "report", "RUN=", f"REPORT_FLAGS={' '.join(flags)}"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, summary


def test_report_compares_a_pr_that_changes_a_hyperparameter(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = pr_repo(pipeline_repo, tmp_path, old="C: 1.0", new="C: 0.05")
    result, summary = make_report(repo, tmp_path, "--load-seconds", "2", "--concurrency", "2")
    report_dir = repo / "report"
    report = (report_dir / "report.md").read_text(encoding="utf-8")

    assert "| `model.hyperparameters.logistic_regression.C` | `1.0` | `0.05` |" in report
    assert "`seed`" not in report  # only what changed
    base = json.loads(git(repo, "show", "main:metrics.json"))
    pr = json.loads((repo / "metrics.json").read_text(encoding="utf-8"))
    assert pr != base, "the hyperparameter change did not change the metrics"
    for name in ("accuracy", "f1", "roc_auc", "log_loss"):
        row = f"| `{name}` | {base[name]:.4f} | {pr[name]:.4f} | {pr[name] - base[name]:+.4f} |"
        assert row in report, f"{row!r} missing from:\n{report}"
    assert re.search(r"\| Latency p50 \| [\d.]+ ms \| [\d.]+ ms \|", report), report
    assert re.search(r"\| Latency p99 \| [\d.]+ ms \| [\d.]+ ms \|", report), report
    for side in ("base", "pr"):
        for plot in ("roc", "precision_recall", "confusion"):
            image = report_dir / f"{side}_{plot}.png"
            assert image.read_bytes().startswith(PNG), image
            assert f"](./{side}_{plot}.png)" in report
    assert (report_dir / "pr-number").read_text() == "7\n"
    assert summary.read_text(encoding="utf-8") == report
    gate_failed = "Quality gate failed" in report
    assert result.returncode == (2 if gate_failed else 0), result.stderr
    assert ("quality gate failed" in result.stderr) == gate_failed


def test_report_says_which_stage_failed_and_fails_the_check(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = pr_repo(pipeline_repo, tmp_path, old="C: 1.0", new="C: -1.0")
    result, _ = make_report(repo, tmp_path, "--no-load")
    report = (repo / "report" / "report.md").read_text(encoding="utf-8")

    assert result.returncode != 0
    assert "### ❌ Pipeline failed at stage `train`" in report
    assert "`dvc repro` exited with" in report
    assert "C" in report.split("```text", 1)[1]  # the stage's own error is quoted
    assert "No metrics: the pipeline did not finish" in report
    assert not list((repo / "report").glob("pr_*.png"))
    assert "error: `dvc repro` failed at stage train" in result.stderr
