"""report.py on fixed inputs: the markdown for each situation, the files it writes, and how it reads git."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.report import pr as report
from mltemplate.report.loadtest import LoadStats
from mltemplate.report.pr import Failure, Serving, Side

PNG = b"\x89PNG\r\n\x1a\nfake"
PARAMS = {"seed": 1, "model": {"estimator": "lr", "hyperparameters": {"lr": {"C": 1.0}}}}
BASE_METRICS = {"accuracy": 0.95, "recall": 0.93, "log_loss": 0.10, "support": {"no": 90, "yes": 53}}
THRESHOLDS = {"accuracy": 0.90, "recall": 0.90}


def side(label: str, metrics: dict[str, object] | None = None, **changes: object) -> Side:
    params = {**PARAMS, **changes}
    return Side(label, params, metrics, images={"roc": PNG, "confusion": PNG}, model_bytes=2048)


def render(
    base: Side,
    pr: Side,
    *,
    gate_failures: list[str] | None = None,
    failure: Failure | None = None,
    serving: Serving | None = None,
) -> str:
    return report.render(
        base, pr, thresholds=THRESHOLDS, gate_failures=gate_failures or [], failure=failure, serving=serving
    )


def stats(p50: float, p99: float, errors: int = 0) -> LoadStats:
    return LoadStats(100, errors, 2.0, 50.0, p50, p50, p99, {200: 100 - errors, 503: errors} if errors else {200: 100})


def test_render_shows_only_the_changed_param_with_both_values() -> None:
    pr_params = {**PARAMS, "model": {"estimator": "lr", "hyperparameters": {"lr": {"C": 0.1}}}}
    pr = Side("PR #3", pr_params, {**BASE_METRICS})
    text = render(side("main", BASE_METRICS), pr)
    assert "| `model.hyperparameters.lr.C` | `1.0` | `0.1` |" in text
    assert "`seed`" not in text


def test_render_says_no_params_changed() -> None:
    assert "No params changed." in render(side("main", BASE_METRICS), side("PR", BASE_METRICS))


def test_render_metrics_table_has_base_pr_delta_marker_and_threshold() -> None:
    pr = side("PR", {**BASE_METRICS, "accuracy": 0.97, "recall": 0.88, "log_loss": 0.08})
    text = render(side("main", BASE_METRICS), pr)
    assert "| `accuracy` | 0.9500 | 0.9700 | +0.0200 | 🟢 better | ≥ 0.9000 ✅ |" in text
    assert "| `recall` | 0.9300 | 0.8800 | -0.0500 | 🔴 worse | ≥ 0.9000 ❌ |" in text
    assert "| `log_loss` | 0.1000 | 0.0800 | -0.0200 | 🟢 better |  |" in text
    assert "Held-out rows per class: `no` 90, `yes` 53." in text


def test_render_marks_new_and_removed_metrics() -> None:
    pr = side("PR", {"accuracy": 0.95, "recall": 0.93, "brier": 0.05})
    text = render(side("main", BASE_METRICS), pr)
    assert "| `brier` | — | 0.0500 | — | 🆕 new |" in text
    assert "| `log_loss` | 0.1000 | — | — | ⛔ removed |" in text


def test_render_handles_a_base_branch_without_metrics() -> None:
    base = Side("main", None, None)
    text = render(base, side("PR", BASE_METRICS))
    assert "main has no metrics yet" in text
    assert "| `accuracy` | — | 0.9500 | — | 🆕 new | ≥ 0.9000 ✅ |" in text
    assert "main has no params.yaml yet" in text
    assert "_no ROC_ | ![ROC, PR](./pr_roc.png)" in text


def test_render_lists_each_gate_failure() -> None:
    reasons = ["`recall` 0.8800 is below its threshold 0.9000 by 0.0200", "`f1` fell 0.0300 behind main"]
    text = render(side("main", BASE_METRICS), side("PR", BASE_METRICS), gate_failures=reasons)
    assert "### ❌ Quality gate failed" in text
    assert all(f"- {reason}" in text for reason in reasons)
    assert "Quality gate passed" not in text


def test_render_passed_gate_says_so() -> None:
    assert "### ✅ Quality gate passed" in render(side("main", BASE_METRICS), side("PR", BASE_METRICS))


def test_render_a_failed_stage_says_what_failed_instead_of_metrics() -> None:
    failure = Failure("dvc repro", 1, "train", "ValueError: C must be positive")
    pr = Side("PR", PARAMS, None)
    text = render(side("main", BASE_METRICS), pr, failure=failure)
    assert "### ❌ Pipeline failed at stage `train`" in text
    assert "ValueError: C must be positive" in text
    assert "No metrics: the pipeline did not finish" in text
    assert "| `accuracy` |" not in text


def test_render_serving_cost_side_by_side() -> None:
    serving = Serving(pr=stats(12.0, 40.0, errors=3), base=stats(10.0, 30.0), concurrency=4)
    pr = Side("PR", PARAMS, BASE_METRICS, model_bytes=3072)
    text = render(side("main", BASE_METRICS), pr, serving=serving)
    assert "| Model file (`models/model.skops`) | 2.0 KiB | 3.0 KiB (+50.0%) |" in text
    assert "| Latency p50 | 10.0 ms | 12.0 ms |" in text
    assert "| Latency p99 | 30.0 ms | 40.0 ms |" in text
    assert "**3 failed**" in text


def test_render_serving_says_why_the_base_was_not_measured() -> None:
    serving = Serving(pr=stats(12.0, 40.0), base=None, concurrency=4, base_reason="its model is not in the cache")
    text = render(side("main", BASE_METRICS), side("PR", BASE_METRICS), serving=serving)
    assert "| Latency p50 | — | 12.0 ms |" in text
    assert "- main: not measured: its model is not in the cache." in text


@pytest.mark.parametrize(
    ("size", "shown"),
    [(None, "—"), (512, "512 B"), (2048, "2.0 KiB"), (5 * 2**20, "5.0 MiB"), (3 * 2**30, "3072.0 MiB")],
)
def test_human_bytes(size: int | None, shown: str) -> None:
    assert report.human_bytes(size) == shown


def test_failed_stage_is_read_from_dvc_output() -> None:
    output = "Running stage 'train':\nERROR: failed to reproduce 'train': failed to run: python -m x, exited with 1"
    assert report.failed_stage(output) == "train"
    assert report.failed_stage("something else broke") is None


def test_run_pipeline_stops_at_the_first_failing_command() -> None:
    fail = "import sys; print(\"ERROR: failed to reproduce 'evaluate': boom\"); sys.exit(3)"
    commands = [("python", "-c", "print('ok')"), ("python", "-c", fail), ("python", "-c", "raise SystemExit(9)")]
    failure = report.run_pipeline(commands)
    assert failure == Failure(f"python -c {fail}", 3, "evaluate", "ERROR: failed to reproduce 'evaluate': boom")


def test_run_pipeline_returns_none_when_all_succeed() -> None:
    assert report.run_pipeline([("python", "-c", "pass")]) is None


def test_write_puts_images_with_side_prefixes_and_removes_stale_ones(tmp_path: Path) -> None:
    (tmp_path / "pr_old.png").write_bytes(PNG)
    written = report.write(tmp_path, "# report\n", side("main"), Side("PR", None, None, {"roc": PNG}), pr_number="12")
    assert written.read_text() == "# report\n"
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["base_confusion.png", "base_roc.png", "pr_roc.png"]
    assert (tmp_path / "pr-number").read_text() == "12\n"


@pytest.mark.parametrize("number", ["12; rm -rf /", "-1", "1e3"])
def test_pr_number_must_be_digits(number: str) -> None:
    with pytest.raises(CommandError, match="PR_NUMBER must be a positive integer"):
        report._pr_number({"PR_NUMBER": number})


def test_gate_settings_reports_invalid_params_instead_of_raising() -> None:
    thresholds, tolerance, max_slice_gap, error = report.gate_settings({"name": "x"})
    assert (thresholds, tolerance, max_slice_gap) == ({}, 0.0, {})
    assert error is not None
    assert "params.yaml" in error


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=tmp_path, check=True)

    git("init", "-q", "-b", "main")
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.9}\n')
    git("add", "-A")
    git("commit", "-qm", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_resolve_base_falls_back_from_origin_main_to_main(git_repo: Path) -> None:
    assert report.resolve_base(None) == "main"


def test_resolve_base_refuses_an_unknown_ref(git_repo: Path) -> None:
    with pytest.raises(CommandError, match="base ref 'origin/nope' is not a commit here"):
        report.resolve_base("origin/nope")


def test_base_side_reads_the_committed_files_and_tolerates_missing_ones(git_repo: Path) -> None:
    base = report.base_side("main", "main")
    assert base.params == {"seed": 1}
    assert base.metrics == {"accuracy": 0.9}
    assert base.images == {}
    assert base.model_bytes is None


def test_report_runs_as_a_module_without_a_git_base(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mltemplate.report.pr", "--no-repro", "--no-load", "--base", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: base ref 'nope' is not a commit here")
