"""verdict.py: what fails a PR report before any metric is read, the one gate on its metrics and on its comparison
with the base on the same rows, under the policy the caller trusts, and the commit status that says so."""

from __future__ import annotations

import pytest

from mltemplate.report.escape import code
from mltemplate.report.schema import ComparisonData, Failure, GroupData, Side
from mltemplate.report.verdict import STATUS_CONTEXT, judge_report
from tests.report.samples import POLICY, comparison, difference, report


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"failure": Failure(command="dvc repro", returncode=1, stage="train")}, "the pipeline failed"),
        ({"stale": ["dvc.lock", "metrics.json"]}, "2 committed output(s) are stale"),
        ({"params_error": "params.yaml: seed: bad"}, "the PR's params.yaml is invalid"),
    ],
)
def test_a_failure_stale_outputs_or_bad_params_fail_the_gate(changes: dict[str, object], reason: str) -> None:
    verdict = judge_report(report(None, **changes), policy=POLICY, source="trusted")
    assert any(failure.startswith(reason) for failure in verdict.failures())
    assert verdict.status()["state"] == "failure"


def test_a_pr_without_metrics_fails_without_a_gate_verdict() -> None:
    verdict = judge_report(report(pr=Side(label="PR")), policy=POLICY, source="trusted")
    assert verdict.failures() == ["the PR's pipeline wrote no metrics"]
    assert verdict.verdict is None


def test_a_confidently_worse_pr_fails_on_the_tolerance() -> None:
    worse = report(comparison=comparison(difference("accuracy", 0.9, -0.15, -0.06)))
    verdict = judge_report(worse, policy=POLICY, source="trusted")
    assert verdict.verdict is not None
    assert [c.metric for c in verdict.verdict.failed] == ["accuracy"]
    assert verdict.failures()[0].startswith("accuracy is confidently worse than the base: 0.9000 -> 0.7950")


def test_the_tolerance_applies_when_the_pr_changed_the_data() -> None:
    # Once, metrics.json values compared only on the same data; the same-rows comparison has no such condition.
    worse = report(
        base=Side(label="main", metrics={"accuracy": 0.9}, data_md5="a" * 32),
        pr=Side(label="PR", metrics={"accuracy": 0.85, "recall": 0.8}, data_md5="b" * 32),
        comparison=comparison(difference("accuracy", 0.9, -0.15, -0.06)),
    )
    assert not judge_report(worse, policy=POLICY, source="trusted").passed


def test_without_a_comparison_only_the_thresholds_apply() -> None:
    unmeasured = report(comparison=ComparisonData(reason="the base's model could not be had: no data.dvc"))
    verdict = judge_report(unmeasured, policy=POLICY, source="trusted")
    assert verdict.passed
    assert verdict.verdict is not None
    assert {c.kind for c in verdict.verdict.criteria} == {"threshold"}


def test_a_group_of_a_trusted_slice_column_fails_by_name() -> None:
    group = GroupData(column="sex", value="F", rows=40, differences=[difference("recall", 0.9, -0.4, -0.2)])
    verdict = judge_report(report(comparison=comparison(groups=(group,))), policy=POLICY, source="trusted")
    assert verdict.failures(code)[0].startswith("<code>slices.sex.F.recall</code> is confidently worse")
    assert verdict.failures()[0].startswith("slices.sex.F.recall is confidently worse")


def test_a_passing_report_s_status_names_where_the_policy_came_from() -> None:
    assert judge_report(report(), policy=POLICY, source="params.yaml at abc1234").status() == {
        "state": "success",
        "context": STATUS_CONTEXT,
        "description": "passed (params.yaml at abc1234)",
    }


def test_the_failures_name_the_thresholds_missed() -> None:
    verdict = judge_report(report({"accuracy": 0.95, "recall": 0.6}), policy=POLICY, source="trusted")
    assert verdict.failures() == ["recall 0.6000 is below its threshold 0.7000 by 0.1000"]
    assert [c.metric for c in verdict.thresholds] == ["accuracy", "recall"]


def test_self_reported_numbers_that_pass_leave_the_status_pending() -> None:
    found = judge_report(report(), policy=POLICY, source="trusted", self_reported=True).status()
    assert found["state"] == "pending"
    assert found["description"] == "self-reported by the PR's own code, a maintainer's review decides; passed (trusted)"


def test_self_reported_numbers_that_fail_fail_the_status() -> None:
    found = judge_report(report({"accuracy": 0.5, "recall": 0.8}), policy=POLICY, source="t", self_reported=True)
    assert found.status()["state"] == "failure"
    assert found.status()["description"].isascii()
    assert len(found.status()["description"]) <= 140
