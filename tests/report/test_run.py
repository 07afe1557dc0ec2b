"""run.py: running the PR's pipeline (stopping at the first failing command, naming the stage), and which committed
outputs a run left stale."""

from __future__ import annotations

from pathlib import Path

from mltemplate.report.run import changed_stages, run_pipeline, stale_outputs
from mltemplate.report.schema import Failure


def test_run_pipeline_stops_at_the_first_failing_command() -> None:
    fail = "import sys; print('boom'); sys.exit(3)"
    commands = [("python", "-c", "print('ok')"), ("python", "-c", fail), ("python", "-c", "raise SystemExit(9)")]
    assert run_pipeline(commands) == Failure(command=f"python -c {fail}", returncode=3, stage=None, tail="boom")


def test_run_pipeline_returns_none_when_all_succeed() -> None:
    assert run_pipeline([("python", "-c", "pass")]) is None


def test_stale_outputs_names_changed_and_new_committed_outputs(dvc_repo: Path) -> None:
    assert stale_outputs() == []
    (dvc_repo / "metrics.json").write_text('{"accuracy": 0.5}\n')
    (dvc_repo / "plots" / "new.json").write_text("{}\n")
    (dvc_repo / "params.yaml").write_text("seed: 3\n")  # not an output
    assert stale_outputs() == ["metrics.json", "plots/new.json"]


def test_changed_stages_follow_dvc_yaml_order(dvc_repo: Path) -> None:
    (dvc_repo / "dvc.yaml").write_text(
        "stages:\n  first:\n    cmd: echo\n    deps: [a.txt]\n  second:\n    cmd: echo\n    deps: [b.txt]\n"
    )
    (dvc_repo / "a.txt").write_text("a")
    (dvc_repo / "b.txt").write_text("b")
    assert changed_stages() == ["first", "second"]


def test_a_failed_dvc_repro_names_the_first_stage_still_changed(dvc_repo: Path) -> None:
    (dvc_repo / "dvc.yaml").write_text(
        "stages:\n  first:\n    cmd: echo ok\n    deps: [a.txt]\n  second:\n    cmd: exit 4\n    deps: [b.txt]\n"
    )
    (dvc_repo / "a.txt").write_text("a")
    (dvc_repo / "b.txt").write_text("b")
    failure = run_pipeline([("dvc", "repro")])
    assert failure is not None
    assert (failure.command, failure.stage) == ("dvc repro", "second")
