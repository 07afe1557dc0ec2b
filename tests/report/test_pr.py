"""report/pr.py on fixed inputs: what it reads from both sides (DVC at the base rev, the working tree for the PR),
how it runs the pipeline, which committed outputs it calls stale, and the artifact it writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.report import artifact
from mltemplate.report import pr as report
from mltemplate.report.artifact import Confusion, Failure, Report, Side
from tests.conftest import VENV_BIN
from tests.report.test_artifact import png

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@e"]


def test_scalar_params_flattens_and_keeps_lists_as_json_text() -> None:
    params = {"seed": 1, "model": {"C": 0.5, "cols": ["a", "b"], "none": None}, "flag": True}
    assert report.scalar_params(params) == {
        "seed": 1,
        "model.C": 0.5,
        "model.cols": '["a", "b"]',
        "model.none": None,
        "flag": True,
    }


def test_curve_reads_the_named_axes() -> None:
    rows = [{"fpr": 0, "tpr": 0.5}, {"fpr": 1, "tpr": 1}]
    assert report.curve(rows, "roc") == [(0.0, 0.5), (1.0, 1.0)]


@pytest.mark.parametrize("rows", [None, [{"x": 1}], [{"fpr": "a", "tpr": 1}]])
def test_curve_is_none_for_rows_it_cannot_read(rows: list[dict[str, object]] | None) -> None:
    assert report.curve(rows, "roc") is None


def test_confusion_counts_actual_by_predicted() -> None:
    rows = [{"actual": "b", "predicted": "a"}, {"actual": "a", "predicted": "a"}, {"actual": "b", "predicted": "b"}]
    assert report.confusion(rows) == Confusion(labels=["a", "b"], counts=[[1, 0], [1, 1]])


def test_confusion_reads_the_stored_counts() -> None:
    rows = [
        {"actual": a, "predicted": p, "count": n}
        for a, p, n in [("a", "a", 5), ("a", "b", 0), ("b", "a", 2), ("b", "b", 9)]
    ]
    assert report.confusion(rows) == Confusion(labels=["a", "b"], counts=[[5, 0], [2, 9]])


def test_side_keeps_scalar_metrics_and_support_apart() -> None:
    metrics = {"accuracy": 0.9, "support": {"no": 3, "yes": 2}}
    built = report.side("PR", params=None, metrics=metrics, points={}, model_bytes=10)
    assert built.metrics == {"accuracy": 0.9}
    assert built.support == {"no": 3, "yes": 2}


def test_run_pipeline_stops_at_the_first_failing_command() -> None:
    fail = "import sys; print('boom'); sys.exit(3)"
    commands = [("python", "-c", "print('ok')"), ("python", "-c", fail), ("python", "-c", "raise SystemExit(9)")]
    assert report.run_pipeline(commands) == Failure(command=f"python -c {fail}", returncode=3, stage=None, tail="boom")


def test_run_pipeline_returns_none_when_all_succeed() -> None:
    assert report.run_pipeline([("python", "-c", "pass")]) is None


@pytest.mark.parametrize("number", ["12; rm -rf /", "-1", "1e3", "0"])
def test_pr_number_must_be_a_positive_integer(number: str) -> None:
    with pytest.raises(CommandError, match="PR_NUMBER must be a positive integer"):
        report._pr_number({"PR_NUMBER": number})


def test_head_sha_must_be_a_full_sha() -> None:
    with pytest.raises(CommandError, match="HEAD_SHA must be a full commit sha"):
        report._head_sha({"HEAD_SHA": "abc"})


def test_policy_reports_invalid_params_instead_of_raising() -> None:
    found, error = report.policy({"name": "x"})
    assert (found.thresholds, found.tolerance, found.max_slice_gap) == ({}, 0.0, {})
    assert error is not None
    assert "params.yaml" in error


def test_write_replaces_an_earlier_artifact_and_leaves_other_files(tmp_path: Path) -> None:
    (tmp_path / "pr_confusion.png").write_bytes(png())
    (tmp_path / "keep.txt").write_text("mine")
    written = Report(base_ref="main", base=Side(label="main"), pr=Side(label="PR"))
    report.write(tmp_path, written, "# report\n", {"pr_roc.png": png()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "pr_roc.png", "report.json", "report.md"]
    assert artifact.parse((tmp_path / "report.json").read_bytes()) == written


@pytest.fixture
def dvc_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git + DVC repository whose `main` commits params.yaml, metrics.json, plots/roc.json and dvc.lock."""

    def git(*args: str) -> None:
        subprocess.run([*GIT, *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    subprocess.run([str(VENV_BIN / "dvc"), "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "params.yaml").write_text("seed: 1\nmodel:\n  C: 1.0\n")
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.9, "support": {"no": 3}}\n')
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "roc.json").write_text('{"roc": [{"fpr": 0, "tpr": 0}, {"fpr": 1, "tpr": 1}]}\n')
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  train:\n    cmd: x\n    outs:\n"
        "    - path: models/model.skops\n      md5: 0123456789abcdef0123456789abcdef\n      size: 2048\n"
    )
    git("add", "-A")
    git("commit", "-qm", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_resolve_base_falls_back_from_origin_main_to_main(dvc_repo: Path) -> None:
    assert report.resolve_base(None) == "main"


def test_resolve_base_refuses_an_unknown_ref(dvc_repo: Path) -> None:
    with pytest.raises(CommandError, match="base ref 'origin/nope' is not a commit here"):
        report.resolve_base("origin/nope")


def test_base_side_reads_params_metrics_plots_and_model_size_through_dvc(dvc_repo: Path) -> None:
    (dvc_repo / "params.yaml").write_text("seed: 2\n")  # the working tree is not the base
    base = report.base_side("main", "main")
    assert base.params == {"seed": 1, "model.C": 1.0}
    assert base.metrics == {"accuracy": 0.9}
    assert base.support == {"no": 3}
    assert base.curves == {"roc": [(0.0, 0.0), (1.0, 1.0)]}
    assert base.model_bytes == 2048
    assert base.confusion is None


def test_base_tree_says_when_dvc_cannot_get_the_base_model(dvc_repo: Path) -> None:
    with (
        pytest.raises(CommandError, match=re.escape("DVC could not get its models/model.skops")),
        report.base_tree("main"),
    ):
        pass


def test_stale_outputs_names_changed_and_new_committed_outputs(dvc_repo: Path) -> None:
    assert report.stale_outputs() == []
    (dvc_repo / "metrics.json").write_text('{"accuracy": 0.5}\n')
    (dvc_repo / "plots" / "new.json").write_text("{}\n")
    (dvc_repo / "params.yaml").write_text("seed: 3\n")  # not an output
    assert report.stale_outputs() == ["metrics.json", "plots/new.json"]


def test_changed_stages_follow_dvc_yaml_order(dvc_repo: Path) -> None:
    (dvc_repo / "dvc.yaml").write_text(
        "stages:\n  first:\n    cmd: echo\n    deps: [a.txt]\n  second:\n    cmd: echo\n    deps: [b.txt]\n"
    )
    (dvc_repo / "a.txt").write_text("a")
    (dvc_repo / "b.txt").write_text("b")
    assert report.changed_stages() == ["first", "second"]


def test_report_runs_as_a_module_without_a_git_base(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mltemplate.report.pr", "--no-repro", "--no-load", "--base", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: base ref 'nope' is not a commit here")


def test_report_writes_an_artifact_that_make_comment_accepts(dvc_repo: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mltemplate.report.pr", "--no-repro", "--no-load", "--base", "main"],
        capture_output=True,
        text=True,
        env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "PR_NUMBER": "4", "HEAD_SHA": "d" * 40},
    )
    assert result.returncode == 1  # the toy params.yaml is not valid params: the report says so and fails
    loaded = artifact.load(dvc_repo / "report")
    assert (loaded.report.pr_number, loaded.report.head_sha) == (4, "d" * 40)
    assert loaded.report.params_error is not None
    assert json.loads((dvc_repo / "report" / "report.json").read_text())["base"]["metrics"] == {"accuracy": 0.9}


def test_load_runs_alternate_abba_and_a_side_that_cannot_serve_leaves_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import contextmanager

    from mltemplate.report import loadtest

    order: list[str] = []

    @contextmanager
    def served(repo: Path, **_: object) -> Iterator[str]:
        yield "http://base" if repo.name == "base" else "http://pr"

    def measure(url: str, body: bytes, *, concurrency: int, **_: object) -> loadtest.LoadStats:
        if concurrency > 1:  # not the warm-up
            order.append(url.removeprefix("http://").removesuffix("/predict"))
        return loadtest.LoadStats(10, 0, 1.0, 10.0, 1.0, 2.0, 3.0, {200: 10})

    @contextmanager
    def base_tree(ref: str) -> Iterator[Path]:
        yield tmp_path / "base"

    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "predict.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loadtest, "served", served)
    monkeypatch.setattr(loadtest, "measure", measure)
    monkeypatch.setattr(report, "base_tree", base_tree)
    serving = report.measure_serving("main", rounds=4, seconds=1.0, concurrency=2)
    assert order == ["base", "pr", "pr", "base", "base", "pr", "pr", "base"]
    assert (len(serving.base.runs), len(serving.pr.runs)) == (4, 4)

    def no_model(ref: str) -> Iterator[Path]:
        raise CommandError("DVC could not get its models/model.skops (not in the cache)")

    monkeypatch.setattr(report, "base_tree", no_model)
    order.clear()
    serving = report.measure_serving("main", rounds=2, seconds=1.0, concurrency=2)
    assert order == ["pr", "pr"]
    assert serving.base.reason == "DVC could not get its models/model.skops (not in the cache)"
