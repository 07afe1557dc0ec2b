"""pr-report.yml then pr-comment.yml under act, as GitHub chains them (workflow_run): the report job uploads the
`pr-report` artifact, the comment job downloads it from the report's run, renders the comment, sets the
quality-gate status on the PR's head commit and posts the sticky comment with CML (the stand-in), all through the
GitHub stand-in. A PR that did not commit its outputs, and a fork PR that forged its artifact, do not pass."""

from __future__ import annotations

import html
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mltemplate.params import load_params
from tests.conftest import ROOT, nudged_hyperparameter, subprocess_env
from tests.workflows.act import Act, Run
from tests.workflows.conftest import Repo
from tests.workflows.github_api import FakeGitHub

pytestmark = [pytest.mark.integration, pytest.mark.workflows, pytest.mark.timeout(1800)]

CONTEXT = "model report / quality gate"
KEY, VALUE = nudged_hyperparameter(load_params(ROOT / "params.yaml"))
QUICK_LOAD = {"REPORT_FLAGS": "--rounds 1 --load-seconds 1"}


@dataclass
class PullRequest:
    number: int
    head: str
    branch: str
    fork: str


def set_param(repo: Path, key: str, value: object) -> None:
    params = repo / "params.yaml"
    raw = yaml.safe_load(params.read_text(encoding="utf-8"))
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value
    params.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


def reproduce(repo: Path) -> None:
    subprocess.run(["dvc", "repro"], cwd=repo, env=subprocess_env(), check=True, capture_output=True)


def open_pull_request(
    repo: Repo, github: FakeGitHub, change: Callable[[Path], None], *, branch: str = "tune", fork: str = ""
) -> PullRequest:
    """Commit `change` on a branch, open its PR on the stand-in, push refs/pull/N/head and the merge commit
    (refs/pull/N/merge, which the report job checks out), and leave the working copy at that merge commit."""
    repo.git("switch", "-q", "-c", branch, "main")
    change(repo.path)
    head = repo.commit(f"Change {KEY}")
    number = github.open_pull(head=branch, sha=head, fork=fork)
    repo.git("switch", "-q", "--detach", "main")
    repo.git("merge", "-q", "--no-ff", "-m", f"Merge {head[:7]} into main", head)
    repo.git("push", "-q", "origin", f"{head}:refs/pull/{number}/head", f"HEAD:refs/pull/{number}/merge")
    return PullRequest(number, head, branch, fork or github.repository)


def run_report(act: Act, repo: Repo, pull: PullRequest, **env: str) -> Run:
    full_name = pull.fork
    payload = {
        "action": "synchronize",
        "number": pull.number,
        "pull_request": {
            "number": pull.number,
            "head": {
                "sha": pull.head,
                "ref": pull.branch,
                "repo": {"full_name": full_name, "fork": full_name != act.github.repository},
            },
            "base": {"ref": "main", "sha": repo.git("rev-parse", "main"), "repo": {"full_name": act.github.repository}},
        },
    }
    return act.run(repo.path, "pr-report.yml", "pull_request", payload, env=env)


def run_comment(act: Act, repo: Repo, pull: PullRequest, report: Run) -> Run:
    repo.git("switch", "-q", "main")  # the comment job checks out the default branch
    payload = {
        "action": "completed",
        "workflow": {"name": "PR report"},
        "workflow_run": {
            "id": report.run_id,
            "name": "PR report",
            "event": "pull_request",
            "conclusion": "success" if report.result("report") == "success" else "failure",
            "head_sha": pull.head,
            "head_branch": pull.branch,
            "head_repository": {"full_name": pull.fork},
        },
    }
    return act.run(repo.path, "pr-comment.yml", "workflow_run", payload)


def posted(github: FakeGitHub, number: int) -> list[str]:
    return [c["body"] for c in github.issues[number]["comments"]]


def a_policy_any_change_meets(repo: Repo) -> str:
    """Commit on main (and push) a gate policy the nudged model meets whatever the project's data: no floors or
    ceilings, no slice gaps, the largest tolerance. The verdict reads its policy from the base, so this is the
    policy the PR is judged by; whether a given change meets a strict one is the gate's own tests' subject, and it
    depends on the data (on one data set the nudge honestly worsens log_loss past the shipped tolerance)."""
    for key, value in (("evaluate.thresholds", {}), ("evaluate.max_slice_gap", {}), ("evaluate.tolerance", 1.0)):
        set_param(repo.path, key, value)
    policy = repo.commit("Gate on the tolerance alone")  # evaluate reads none of these: main stays current
    repo.git("push", "-q", "origin", "main")
    return policy


def test_a_params_pr_gets_its_report_comment_and_a_passing_gate_status(
    act: Act, repo: Repo, github: FakeGitHub
) -> None:
    def tune(path: Path) -> None:
        set_param(path, KEY, VALUE)
        reproduce(path)

    policy = a_policy_any_change_meets(repo)
    pull = open_pull_request(repo, github, tune)
    report = run_report(act, repo, pull, **QUICK_LOAD)
    assert report.result("report") == "success", report.explain()
    assert [a.name for a in github.artifacts if a.run_id == str(report.run_id)] == ["pr-report"]

    comment = run_comment(act, repo, pull, report)
    assert comment.result("comment") == "success", comment.explain()
    (status,) = github.statuses[pull.head]
    # `success` on the trusted verdict: the default branch's code ran the PR's params (`make verdict`)
    assert comment.result("verdict") == "success", comment.explain()
    assert (status["context"], status["state"]) == (CONTEXT, "success")
    (body,) = posted(github, pull.number)
    assert "Quality gate passed" in body
    assert f"from params.yaml at {policy[:7]} of the base repository" in body
    assert KEY in html.unescape(body)  # the params table shows keys as entities (`_` is `&#95;`)
    (cml,) = [s for s in github.standins if s.get("tool") == "cml"]
    assert f"--target=pr/{pull.number}" in cml["argv"]
    assert "--publish=false" in cml["argv"]
    assert cml["file"] in body

    again = run_comment(act, repo, pull, report)  # a re-run updates the one sticky comment
    assert again.result("comment") == "success", again.explain()
    assert len(posted(github, pull.number)) == 1
    assert len(github.statuses[pull.head]) == 2


def test_a_pr_that_did_not_commit_its_outputs_fails_as_stale_and_the_comment_says_so(
    act: Act, repo: Repo, github: FakeGitHub
) -> None:
    pull = open_pull_request(repo, github, lambda path: set_param(path, KEY, VALUE))
    report = run_report(act, repo, pull, REPORT_FLAGS="--no-load")
    assert report.result("report") == "failure", report.explain()
    assert report.step("report", "Upload the report, also when the gate failed") == "success"

    comment = run_comment(act, repo, pull, report)
    assert comment.result("comment") == "success", comment.explain()
    (status,) = github.statuses[pull.head]
    assert status["state"] == "failure"
    assert "stale" in status["description"]
    (body,) = posted(github, pull.number)
    assert "Stale committed outputs" in body
    assert "metrics.json" in body


def test_a_fork_pr_whose_report_target_forges_the_artifact_gets_no_success_status(
    act: Act, repo: Repo, github: FakeGitHub
) -> None:
    def forge(path: Path) -> None:
        # The fork's Makefile writes a report with a file outside the artifact's allowlist instead of running.
        makefile = (path / "Makefile").read_text(encoding="utf-8")
        makefile = makefile.replace(
            "\t$(RUN) python -m mltemplate.report.pr $${REPORT_FLAGS:-}\n",
            "\tmkdir -p report && printf '{\"pr_number\": 1}' > report/report.json && echo hi > report/evil.md\n",
        )
        (path / "Makefile").write_text(makefile, encoding="utf-8")

    pull = open_pull_request(repo, github, forge, branch="fork-main", fork="mallory/template")
    report = run_report(act, repo, pull)
    assert report.result("report") == "success", report.explain()

    comment = run_comment(act, repo, pull, report)
    assert comment.result("comment") == "failure", comment.explain()
    (status,) = github.statuses[pull.head]
    assert status["state"] != "success"
    assert "refused" in status["description"]
    assert posted(github, pull.number) == []
    assert [c.path for c in github.writes()] == [f"/repos/{github.repository}/statuses/{pull.head}"]


FABRICATE = (
    '\t$(RUN) python -c \'import json, pathlib; p = pathlib.Path("report/report.json"); r = json.loads(p.read_text()); '
    'r["pr"]["metrics"] = {k: (0.0 if k == "log_loss" else 1.0) for k in r["pr"]["metrics"]}; '
    "p.write_text(json.dumps(r))'\n"
)


def test_a_fork_pr_whose_report_claims_perfect_metrics_gets_no_success_status(
    act: Act, repo: Repo, github: FakeGitHub
) -> None:
    def fabricate(path: Path) -> None:
        makefile = (path / "Makefile").read_text(encoding="utf-8")
        line = "\t$(RUN) python -m mltemplate.report.pr $${REPORT_FLAGS:-}\n"
        (path / "Makefile").write_text(makefile.replace(line, line + FABRICATE), encoding="utf-8")

    pull = open_pull_request(repo, github, fabricate, branch="fork-main", fork="mallory/template")
    report = run_report(act, repo, pull, REPORT_FLAGS="--no-load")
    comment = run_comment(act, repo, pull, report)
    assert report.result("report") == "success", report.explain()
    assert comment.result("comment") == "success", comment.explain()
    assert comment.result("verdict") == "success", comment.explain()  # it changes code: listed, not run
    (status,) = github.statuses[pull.head]
    assert status["state"] != "success"
    (body,) = posted(github, pull.number)
    assert "Self-reported numbers" in body
    assert "Makefile" in body  # the file that kept the trusted job from running it
