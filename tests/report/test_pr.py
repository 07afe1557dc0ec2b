"""pr.py, the `make report` CLI: its inputs (base ref, PR number, head sha, the PR's policy), the comparison with
the base it asks for, and the artifact it writes."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.report import artifact
from mltemplate.report import pr as report
from mltemplate.report.schema import Report, Side
from tests.conftest import VENV_BIN
from tests.report.test_artifact import png


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


def test_resolve_base_falls_back_from_origin_main_to_main(dvc_repo: Path) -> None:
    assert report.resolve_base(None) == "main"


def test_resolve_base_refuses_an_unknown_ref(dvc_repo: Path) -> None:
    with pytest.raises(CommandError, match="base ref 'origin/nope' is not a commit here"):
        report.resolve_base("origin/nope")


def test_without_a_base_model_the_comparison_says_why_and_there_is_no_checkout(dvc_repo: Path) -> None:
    with contextlib.ExitStack() as stack:
        found, root = report.compare_with_base("main", slices=[], seed=0, stack=stack)
    assert root is None
    assert found.differences == []
    assert found.reason == "the base's model could not be had: main has no readable data.dvc"


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
    assert loaded.report.comparison is not None
    assert str(loaded.report.comparison.reason).startswith("the base's model could not be had: ")
    assert "Not compared on the same rows: " in (dvc_repo / "report" / "report.md").read_text()
