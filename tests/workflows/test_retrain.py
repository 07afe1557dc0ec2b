"""retrain.yml under act, with a local DVC remote and new labelled records in the prediction log: a push the remote
refuses fails the pull-request job and leaves the records for the next run (nothing is marked used); the next run
pushes a branch retrain/<run id> that changes only the handed data files and opens its PR with RETRAIN_TOKEN and the
retrain's summary as its body; the new data version is in the DVC remote."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mltemplate.monitoring import handoff
from tests.workflows.act import Act, Run
from tests.workflows.conftest import Repo
from tests.workflows.github_api import FakeGitHub
from tests.workflows.prediction_log import write_log

pytestmark = [pytest.mark.integration, pytest.mark.workflows, pytest.mark.timeout(1800)]

LABELLED = 12
PR_STEP = "Commit the listed files on a retrain branch, push it, open the pull request"


def retrain_run(act: Act, repo: Repo, github: FakeGitHub, url: str) -> Run:
    secrets = {
        "MONITORING_DB_URL": url,
        "DVC_AWS_ACCESS_KEY_ID": "unused-by-a-local-remote",
        "DVC_AWS_SECRET_ACCESS_KEY": "unused-by-a-local-remote",
        "RETRAIN_TOKEN": github.token("RETRAIN_TOKEN"),
    }
    return act.run(repo.path, "retrain.yml", "workflow_dispatch", {"inputs": {}}, secrets=secrets)


def test_a_refused_push_leaves_the_records_and_the_next_run_opens_a_data_only_pr(
    act: Act, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    write_log(url, repo.path, drifted=False, rows=LABELLED, new=True)
    hook = repo.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'remote: pushes are refused' >&2\nexit 1\n")
    hook.chmod(0o755)

    refused = retrain_run(act, repo, github, url)
    assert refused.result("retrain") == "success", refused.explain()
    assert refused.result("pull-request") == "failure", refused.explain()
    assert refused.step("pull-request", PR_STEP) == "failure"
    assert github.pulls() == []

    hook.unlink()
    opened = retrain_run(act, repo, github, url)
    assert opened.step("pull-request", PR_STEP) == "success", opened.explain()
    (pull,) = github.pulls()
    branch = f"retrain/{opened.run_id}"
    assert pull["pull_request"]["head"]["ref"] == branch
    assert pull["pull_request"]["base"]["ref"] == "main"
    (create,) = [c for c in github.calls if c.method == "POST" and c.path.endswith("/pulls")]
    assert create.holder == "RETRAIN_TOKEN"
    changed = subprocess.run(
        ["git", "diff", "--name-only", "main", branch], cwd=repo.remote, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"data.dvc", "dvc.lock"} <= set(changed)
    assert all(handoff.allowed(path) for path in changed), changed
    assert str(LABELLED) in pull["body"]
    md5 = yaml.safe_load(
        subprocess.run(["git", "show", f"{branch}:data.dvc"], cwd=repo.remote, capture_output=True, text=True).stdout
    )["outs"][0]["md5"]
    assert (repo.dvc_remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()
