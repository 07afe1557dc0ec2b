"""`make comment`: it refuses an artifact that is not what `make report` writes, shows and judges the trusted run's
numbers whenever there is one (the PR's own only under a warning, and never as a success), and recomputes the gate
under the trusted checkout's params.yaml, whatever the artifact says; it writes comment.md, status.json and
pr-number. The hostile strings are tests/report/test_escape.py's; the markdown, test_render.py's."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.report import comment
from mltemplate.report.schema import PolicyData, Report, Side
from mltemplate.report.verdict import STATUS_CONTEXT
from tests.conftest import ROOT, subprocess_env
from tests.report.samples import THRESHOLDS, comparison, difference, hostile_report, report
from tests.report.test_artifact import png, write_artifact


def make_comment(artifact: Path, out: Path, trusted: Path, *extra: str, verdict: Path | None = None) -> None:
    runs = ["--verdict", str(verdict)] if verdict is not None else []
    comment.main([str(artifact), "--out", str(out), "--params", str(trusted), *runs, *extra])


def trusted_run(directory: Path, found: Report, **files: bytes) -> Path:
    """The trusted verdict job's folder (`make verdict`): its report of the PR, computed by the base's code."""
    return write_artifact(directory, found.model_copy(update={"trust": "trusted"}), **files)


def status(out: Path) -> dict[str, str]:
    found: dict[str, str] = json.loads((out / "status.json").read_text())
    return found


def test_a_forged_pass_is_recomputed_from_the_trusted_thresholds(tmp_path: Path, trusted: Path) -> None:
    # The PR lowered its own thresholds to 0 and its recall is under the trusted floor.
    forged = report({"accuracy": 0.95, "recall": 0.60}, policy=PolicyData(thresholds={"accuracy": 0.0, "recall": 0.0}))
    make_comment(write_artifact(tmp_path / "artifact", forged), tmp_path / "out", trusted)
    assert status(tmp_path / "out")["state"] == "failure"
    assert "recall 0.6000 is below its threshold 0.7000" in status(tmp_path / "out")["description"]
    assert "### ❌ Quality gate failed" in (tmp_path / "out" / "comment.md").read_text()


def test_the_tolerance_is_the_trusted_one_whatever_the_pr_s_policy(tmp_path: Path, trusted: Path) -> None:
    # The PR raised its own tolerance to 1; on the same rows its accuracy is confidently 0.08 to 0.12 worse.
    worse = report(comparison=comparison(difference("accuracy", 0.9, -0.12, -0.08)), policy=PolicyData(tolerance=1.0))
    make_comment(write_artifact(tmp_path / "a", worse), tmp_path / "o", trusted)
    assert status(tmp_path / "o")["state"] == "failure"
    assert "accuracy is confidently worse than the base: 0.9000 -> 0.8000" in status(tmp_path / "o")["description"]
    text = (tmp_path / "o" / "comment.md").read_text()
    assert "beyond the tolerance of 0.0500" in text
    assert "⚠️ loosens the gate" in text  # and the PR's larger tolerance is flagged


def test_a_passing_pr_gets_a_success_status_and_its_number(tmp_path: Path, trusted: Path) -> None:
    artifact, verdict = write_artifact(tmp_path / "artifact", report()), trusted_run(tmp_path / "verdict", report())
    make_comment(artifact, tmp_path / "out", trusted, verdict=verdict)
    found = status(tmp_path / "out")
    assert found == {"state": "success", "context": STATUS_CONTEXT, "description": found["description"]}
    assert found["description"].startswith("passed (params.yaml")
    assert (tmp_path / "out" / "pr-number").read_text() == "7\n"


def test_the_pr_number_comes_from_the_pr_s_artifact_as_the_trusted_run_knows_none(
    tmp_path: Path, trusted: Path
) -> None:
    # `make verdict` runs from the head commit alone (no PR number); make pr-head checks the number against HEAD_SHA
    verdict = trusted_run(tmp_path / "verdict", report().model_copy(update={"pr_number": None}))
    make_comment(write_artifact(tmp_path / "artifact", report()), tmp_path / "out", trusted, verdict=verdict)
    assert status(tmp_path / "out")["state"] == "success"
    assert (tmp_path / "out" / "pr-number").read_text() == "7\n"


def test_the_pr_s_own_numbers_never_get_a_success_status(tmp_path: Path, trusted: Path) -> None:
    make_comment(write_artifact(tmp_path / "artifact", report()), tmp_path / "out", trusted)
    found = status(tmp_path / "out")
    assert found["state"] == "pending"
    assert found["description"].startswith("self-reported by the PR's own code, a maintainer's review decides; passed")
    text = (tmp_path / "out" / "comment.md").read_text()
    assert "### ⚠️ Self-reported numbers" in text
    assert "No trusted run of this PR was given to the comment" in text


def test_an_artifact_that_claims_to_be_trusted_is_still_self_reported(tmp_path: Path, trusted: Path) -> None:
    forged = report().model_copy(update={"trust": "trusted"})
    make_comment(write_artifact(tmp_path / "artifact", forged), tmp_path / "out", trusted)
    assert status(tmp_path / "out")["state"] == "pending"


def test_the_trusted_run_is_judged_whatever_the_artifact_claims(tmp_path: Path, trusted: Path) -> None:
    claimed = report({"accuracy": 0.99, "recall": 0.99})
    measured = report({"accuracy": 0.9, "recall": 0.6})
    artifact, verdict = write_artifact(tmp_path / "a", claimed), trusted_run(tmp_path / "v", measured)
    make_comment(artifact, tmp_path / "out", trusted, verdict=verdict)
    assert status(tmp_path / "out")["state"] == "failure"
    assert "recall 0.6000 is below its threshold 0.7000" in status(tmp_path / "out")["description"]
    assert "0.9900" not in (tmp_path / "out" / "comment.md").read_text()


def test_a_pr_that_changes_code_shows_its_own_numbers_under_a_warning(tmp_path: Path, trusted: Path) -> None:
    listed = Report(base_ref="main", base=Side(label="main"), pr=Side(label="PR"), code_changes=["src/evil.py"])
    artifact, verdict = write_artifact(tmp_path / "a", report()), trusted_run(tmp_path / "v", listed)
    make_comment(artifact, tmp_path / "out", trusted, verdict=verdict)
    assert status(tmp_path / "out")["state"] == "pending"
    text = (tmp_path / "out" / "comment.md").read_text()
    assert "This PR changes more than params and data (<code>src&#47;evil.py</code>)" in text
    assert "| <code>accuracy</code> | 0.9100 |" in text  # the PR's own numbers, shown


def test_a_head_sha_other_than_the_run_s_is_refused(tmp_path: Path, trusted: Path) -> None:
    with pytest.raises(CommandError, match="refused the report artifact: head_sha is 'bbbb"):
        make_comment(write_artifact(tmp_path / "a", report()), tmp_path / "out", trusted, "--head-sha", "c" * 40)
    assert status(tmp_path / "out")["state"] == "failure"
    assert not (tmp_path / "out" / "comment.md").exists()


def test_a_refused_artifact_writes_a_failure_status_and_no_comment(tmp_path: Path, trusted: Path) -> None:
    artifact = write_artifact(tmp_path / "a", report(), **{"pr_roc.png": b"GIF89a"})
    with pytest.raises(CommandError, match=re.escape("pr_roc.png: not a PNG")):
        make_comment(artifact, tmp_path / "out", trusted)
    assert status(tmp_path / "out")["state"] == "failure"
    assert not (tmp_path / "out" / "comment.md").exists()


def test_an_earlier_comment_is_removed_before_a_refusal(tmp_path: Path, trusted: Path) -> None:
    make_comment(write_artifact(tmp_path / "good", report()), tmp_path / "out", trusted)
    with pytest.raises(CommandError):
        make_comment(write_artifact(tmp_path / "bad", b"not json"), tmp_path / "out", trusted)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["status.json"]


def test_plots_are_published_only_when_asked_and_only_validated_pngs(tmp_path: Path, trusted: Path) -> None:
    artifact = write_artifact(tmp_path / "a", report())
    verdict = trusted_run(tmp_path / "v", report(), **{"pr_roc.png": png(), "base_roc.png": png()})
    make_comment(artifact, tmp_path / "private", trusted, verdict=verdict)
    assert "](" not in (tmp_path / "private" / "comment.md").read_text()
    assert not list((tmp_path / "private").glob("*.png"))

    make_comment(artifact, tmp_path / "public", trusted, "--publish-plots", verdict=verdict)
    text = (tmp_path / "public" / "comment.md").read_text()
    assert re.findall(r"\]\(([^)]*)\)", text) == ["./base_roc.png", "./pr_roc.png"]
    assert (tmp_path / "public" / "pr_roc.png").read_bytes() == png()


def test_a_self_reported_run_publishes_no_plot_as_the_base_s(tmp_path: Path, trusted: Path) -> None:
    artifact = write_artifact(tmp_path / "a", report(), **{"pr_roc.png": png(), "base_roc.png": png()})
    make_comment(artifact, tmp_path / "out", trusted, "--publish-plots")
    assert re.findall(r"\]\(([^)]*)\)", (tmp_path / "out" / "comment.md").read_text()) == ["./pr_roc.png"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["pr_roc.png"]


def test_an_invalid_trusted_params_yaml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("seed: -1\n")
    with pytest.raises(CommandError, match=re.escape(f"the trusted {tmp_path / 'params.yaml'}: name: required")):
        make_comment(write_artifact(tmp_path / "a", report()), tmp_path / "out", tmp_path / "params.yaml")


def test_make_comment_renders_a_downloaded_artifact(tmp_path: Path) -> None:
    artifact = write_artifact(tmp_path / "downloaded", hostile_report())
    result = subprocess.run(
        ["make", "comment", "RUN=", f"ARTIFACT={artifact}", f"COMMENT_DIR={tmp_path / 'out'}"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "@octocat" not in (tmp_path / "out" / "comment.md").read_text(encoding="utf-8")
    assert status(tmp_path / "out")["state"] == "failure"


def test_an_artifact_too_big_to_comment_is_refused(tmp_path: Path, trusted: Path) -> None:
    # Within every per-field cap, yet the escaped comment would pass GitHub's limit.
    params = {f"key{i}" + "&" * 150: "<" * 190 for i in range(400)}
    pr = Side(label="PR", params=params, metrics=THRESHOLDS)
    big = Report.model_validate({**report().model_dump(), "base": Side(label="main", params={}), "pr": pr})
    with pytest.raises(CommandError, match="the rendered comment has"):
        make_comment(write_artifact(tmp_path / "a", big), tmp_path / "out", trusted)
    assert status(tmp_path / "out")["state"] == "failure"
