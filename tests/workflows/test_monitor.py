"""monitor.yml under act on a drifted production log: the monitor job fails on its alerts and keeps the report, the
issues job opens one issue per kind of alert; the next run comments on them instead of opening more; a run on a
healthy log closes them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.workflows.act import Act, Run
from tests.workflows.conftest import Repo
from tests.workflows.github_api import FakeGitHub
from tests.workflows.prediction_log import write_log

pytestmark = [pytest.mark.integration, pytest.mark.workflows, pytest.mark.timeout(1800)]


def alert_on_first_breach(repo: Repo) -> None:
    """This repository's monitor alerts on the first breached window (debouncing has its own tests)."""
    params = yaml.safe_load((repo.path / "params.yaml").read_text(encoding="utf-8"))
    params.setdefault("monitor", {})["debounce"] = {"breaches": 1, "windows": 1}
    (repo.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    repo.commit("Alert on the first breach")
    repo.git("push", "-q", "origin", "main")


def monitor(act: Act, repo: Repo, url: str) -> Run:
    return act.run(repo.path, "monitor.yml", "schedule", {"schedule": "17 * * * *"}, secrets={"MONITORING_DB_URL": url})


def test_a_drifted_log_opens_one_issue_per_kind_updates_them_then_closes_them_when_healthy(
    act: Act, repo: Repo, github: FakeGitHub, tmp_path: Path
) -> None:
    alert_on_first_breach(repo)
    drifted = f"sqlite:///{tmp_path / 'drifted.db'}"
    write_log(drifted, repo.path, drifted=True)

    first = monitor(act, repo, drifted)
    assert first.result("monitor") == "failure", first.explain()  # exit 1: alerts fired
    assert first.step("monitor", "Keep the report and the alerts") == "success", first.explain()
    assert first.result("issues") == "success", first.explain()
    drift, quality = github.open_issues("monitoring-drift"), github.open_issues("monitoring-quality")
    assert [i["title"] for i in drift + quality] == ["Monitoring: drift alert", "Monitoring: quality alert"]
    assert "drift " in drift[0]["body"]
    assert "quality " in quality[0]["body"]
    assert f"/actions/runs/{first.run_id}" in drift[0]["body"]
    assert set(github.labels) == {"monitoring-drift", "monitoring-quality"}

    second = monitor(act, repo, drifted)
    assert second.result("issues") == "success", second.explain()
    assert github.open_issues("monitoring-drift") == drift
    assert github.open_issues("monitoring-quality") == quality
    assert len([i for i in github.issues.values() if "pull_request" not in i]) == 2
    for issue in (*drift, *quality):
        (comment,) = issue["comments"]
        assert f"/actions/runs/{second.run_id}" in comment["body"]

    healthy = f"sqlite:///{tmp_path / 'healthy.db'}"
    write_log(healthy, repo.path, drifted=False)
    third = monitor(act, repo, healthy)
    assert third.result("monitor") == "success", third.explain()
    assert third.result("issues") == "success", third.explain()
    assert github.open_issues("monitoring-drift") == github.open_issues("monitoring-quality") == []
    assert all(i["comments"][-1]["body"].startswith("Healthy again") for i in github.issues.values())


def test_without_a_database_the_monitor_succeeds_and_touches_no_issue(act: Act, repo: Repo, github: FakeGitHub) -> None:
    found = act.run(repo.path, "monitor.yml", "workflow_dispatch", {})
    assert (found.result("monitor"), found.result("issues")) == ("success", "success"), found.explain()
    assert found.step("issues", "Open, comment on or close the alert issues") == "skipped"
    assert github.writes() == []
