"""The trusted verdict end to end (`make verdict` on the base's checkout, then `make comment` with the PR's artifact
and the verdict, as pr-comment.yml runs them): a params-only PR, forks included, is judged on numbers the base's code
computed from the PR's params and data, whatever the PR's artifact claims; a PR that changes code never gets a
`success` status on its own numbers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mltemplate.params import load_params
from mltemplate.report import artifact, schema
from mltemplate.report.schema import Report, Side
from tests.conftest import ROOT, nudged_hyperparameter, subprocess_env
from tests.report.test_verdict_e2e import commit, edit_params, git, least_important_alone, main_repo, no_thresholds

pytestmark = pytest.mark.integration

NUDGE = nudged_hyperparameter(load_params(ROOT / "params.yaml"))


def set_key(key: str, value: object):  # type: ignore[no-untyped-def]
    def change(raw: dict[str, object]) -> None:
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node[part]  # type: ignore[assignment,index]
        node[last] = value  # type: ignore[index]

    return change


def make(repo: Path, target: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", target, "RUN="], cwd=repo, env=subprocess_env(**env), capture_output=True, text=True, timeout=900
    )


def forged(dest: Path, head: str) -> Path:
    """An artifact a fork's code could write: perfect metrics, nothing stale, no failure."""
    perfect = {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0, "rmse": 0.0, "r2": 1.0}
    report = Report(
        pr_number=5,
        head_sha=head,
        base_ref="main",
        base=Side(label="main"),
        pr=Side(label="PR", metrics=perfect),
        trust="trusted",  # a claim the comment must not believe
    )
    dest.mkdir(parents=True)
    (dest / artifact.DATA_FILE).write_text(report.to_json(), encoding="utf-8")
    return dest


def judged(repo: Path, head: str, fork_artifact: Path) -> tuple[dict[str, str], str, schema.Report]:
    """On `main` (the trusted checkout): `make verdict` for `head`, then `make comment` with the fork's artifact."""
    git(repo, "checkout", "-q", "main")
    result = make(repo, "verdict", HEAD_SHA=head)
    verdict = artifact.load(repo / "verdict").report
    rendered = make(repo, "comment", ARTIFACT=str(fork_artifact), VERDICT="verdict", HEAD_SHA=head)
    assert (repo / "comment" / "status.json").is_file(), f"{result.stderr}\n{rendered.stderr}"
    status = json.loads((repo / "comment" / "status.json").read_text())
    return status, (repo / "comment" / "comment.md").read_text(encoding="utf-8"), verdict


def test_a_params_only_pr_is_judged_on_the_base_code_s_numbers_not_its_artifact(
    pipeline_repo: Path, tmp_path: Path
) -> None:
    repo = main_repo(pipeline_repo, tmp_path, no_thresholds)
    edit_params(repo, least_important_alone(repo))  # clearly worse, yet its artifact will claim perfection
    commit(repo, "pr: params only")
    head = git(repo, "rev-parse", "HEAD").strip()
    status, comment, verdict = judged(repo, head, forged(tmp_path / "fork", head))

    assert verdict.trust == "trusted"
    assert verdict.code_changes == []
    assert verdict.stale == []
    assert verdict.comparison is not None
    assert verdict.comparison.reason is None
    assert status["state"] == "failure"
    assert "confidently worse than the base" in status["description"]
    assert "Self-reported" not in comment
    assert "1.0000" not in comment.split("### Thresholds")[1].split("###")[0]  # not the forged metrics


def test_a_params_only_pr_that_lowers_its_floors_is_judged_by_the_base_s_policy(
    pipeline_repo: Path, tmp_path: Path
) -> None:
    repo = main_repo(pipeline_repo, tmp_path)
    weaken = least_important_alone(repo)

    def loosen(raw: dict[str, object]) -> None:
        weaken(raw)
        raw["evaluate"] = {"thresholds": {}, "tolerance": 1.0, "slices": [], "max_slice_gap": {}}

    edit_params(repo, loosen)
    commit(repo, "pr: lower the floors")
    head = git(repo, "rev-parse", "HEAD").strip()
    status, comment, _ = judged(repo, head, forged(tmp_path / "fork", head))

    assert status["state"] == "failure"
    assert "Policy changes" in comment
    assert "loosens the gate" in comment


def test_a_params_only_pr_with_stale_outputs_fails_in_the_trusted_run(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = main_repo(pipeline_repo, tmp_path, no_thresholds)
    edit_params(repo, set_key(*NUDGE))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pr: params without their outputs")
    head = git(repo, "rev-parse", "HEAD").strip()
    status, _, verdict = judged(repo, head, forged(tmp_path / "fork", head))

    assert "dvc.lock" in verdict.stale
    assert status["state"] == "failure"


def test_a_pr_that_changes_code_never_gets_success_on_its_own_numbers(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = main_repo(pipeline_repo, tmp_path, no_thresholds)
    makefile = repo / "Makefile"
    makefile.write_text(makefile.read_text() + "\n# a fork's report target could print anything\n")
    git(repo, "commit", "-qam", "pr: touches the Makefile")
    head = git(repo, "rev-parse", "HEAD").strip()
    status, comment, verdict = judged(repo, head, forged(tmp_path / "fork", head))

    assert verdict.code_changes == ["Makefile"]
    assert verdict.pr.metrics is None  # nothing of the PR ran in the trusted job
    assert status["state"] == "pending"
    assert "maintainer's review decides" in status["description"]
    assert "### ⚠️ Self-reported numbers" in comment
    assert "<code>Makefile</code>" in comment
