"""batch.yml under act, with a local DVC remote: a dispatch reproduces the locked model, scores the prepared test set
on a local Dask cluster and keeps the predictions and the summary as the `batch-predictions` artifact; a path the
check refuses runs nothing and uploads nothing; the nightly schedule does nothing until its variables are set."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest

from mltemplate import dvcfiles
from mltemplate.paths import MODEL_FILE
from tests.workflows.act import Act, Run
from tests.workflows.conftest import Repo
from tests.workflows.github_api import FakeGitHub

pytestmark = [pytest.mark.integration, pytest.mark.workflows, pytest.mark.timeout(1800)]

SCORE = "Score on a local Dask cluster"
UPLOAD = "Keep the predictions, the refused rows and the summary"
INPUT = "data/prepared/test.csv"


def dispatch(act: Act, repo: Repo, **inputs: str) -> Run:
    given = {"input": INPUT, "output": "build/batch", "on_bad_rows": "refuse", **inputs}
    return act.run(repo.path, "batch.yml", "workflow_dispatch", {"inputs": given}, inputs=given)


def artifact(github: FakeGitHub, run: Run) -> dict[str, bytes]:
    (found,) = [a for a in github.artifacts if a.run_id == str(run.run_id) and a.name == "batch-predictions"]
    with zipfile.ZipFile(io.BytesIO(found.data)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


def test_a_dispatch_scores_the_test_set_with_the_locked_model_and_keeps_the_predictions(
    act: Act, repo: Repo, github: FakeGitHub
) -> None:
    run = dispatch(act, repo)
    assert run.result("score") == "success", run.explain()
    assert run.step("score", UPLOAD) == "success", run.explain()

    files = artifact(github, run)
    summary = json.loads(files.pop("_summary.json"))
    rows = len(pd.read_csv(repo.path / INPUT))
    assert (summary["status"], summary["rows"], summary["scored"], summary["rejected"]) == ("scored", rows, rows, 0)
    assert summary["model_md5"] == dvcfiles.locked_md5(repo.path / MODEL_FILE, lock=repo.path / "dvc.lock")
    parts = [pd.read_parquet(io.BytesIO(data)) for name, data in sorted(files.items()) if name.endswith(".parquet")]
    assert parts, sorted(files)
    assert all(name.startswith("part-") for name in files), sorted(files)
    scored = pd.concat(parts, ignore_index=True)
    assert sorted(scored["row"]) == list(range(rows))
    assert set(scored["model_version"]) == {summary["model_version"]}


@pytest.mark.parametrize(
    "hostile",
    [
        {"output": "/etc"},
        {"output": "../outside"},
        {"input": "$(touch pwned)"},
        {"input": "data/prepared/test.csv; touch pwned"},
    ],
    ids=["absolute-output", "parent-output", "command-substitution", "command-list"],
)
def test_a_path_the_check_refuses_runs_nothing_and_uploads_nothing(
    act: Act, repo: Repo, github: FakeGitHub, hostile: dict[str, str]
) -> None:
    run = dispatch(act, repo, **hostile)
    assert run.result("score") == "failure", run.explain()
    assert run.step("score", "Check the paths (relative, letters, digits, . _ / - only)") == "failure", run.explain()
    for step in ("The released model (data + dvc repro, checked against dvc.lock)", SCORE, UPLOAD):
        assert run.step("score", step) == "skipped", run.explain()
    assert [a for a in github.artifacts if a.run_id == str(run.run_id)] == []
    assert "must be a relative path of letters, digits" in run.log, run.explain()


def test_the_schedule_does_nothing_until_the_batch_variables_are_set(act: Act, repo: Repo, github: FakeGitHub) -> None:
    run = act.run(repo.path, "batch.yml", "schedule", {"schedule": "41 3 * * *"})
    assert run.result("score") == "skipped", run.explain()
    assert github.writes() == []
