"""The verdict on a PR report: what fails it before any metric is looked at (a failed pipeline, invalid params,
stale outputs, no metrics), then the one gate (mltemplate.gate) on its metrics and its comparison with the base,
under a policy the caller trusts; and the commit status that says so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mltemplate import gate
from mltemplate.params import EvaluateParams
from mltemplate.report.schema import Report

STATUS_CONTEXT = "model report / quality gate"


@dataclass(frozen=True)
class ReportVerdict:
    """What fails the report (fixed sentences) and the gate's verdict on its metrics, and where the policy came
    from. A criterion's name may come from the data (a slice's group): render it with `name`."""

    problems: tuple[str, ...]
    source: str
    verdict: gate.Verdict | None = None
    self_reported: bool = False
    """The numbers come from the PR's own code (it changes code, or no trusted run was given): the status then
    never says success, only that a maintainer's review decides."""

    @property
    def passed(self) -> bool:
        return not self.problems and (self.verdict is None or self.verdict.passed)

    def failures(self, name: Callable[[str], str] = str) -> list[str]:
        failed = self.verdict.failed if self.verdict is not None else []
        return [*self.problems, *(c.reason(name=name) for c in failed)]

    @property
    def thresholds(self) -> list[gate.Criterion]:
        return self.verdict.of("threshold") if self.verdict is not None else []

    def status(self) -> dict[str, str]:
        """The body of `POST /repos/{owner}/{repo}/statuses/{sha}`: plain ASCII, at most 140 characters. Numbers
        the PR's own code computed give `failure` when they fail and `pending` (never `success`) when they pass."""
        text = f"passed ({self.source})" if self.passed else "failed: " + "; ".join(self.failures())
        if self.self_reported:
            text = "self-reported by the PR's own code, a maintainer's review decides; " + text
        text = "".join(c if c.isascii() and c.isprintable() else " " for c in text.replace("`", ""))
        state = "failure" if not self.passed else ("pending" if self.self_reported else "success")
        return {
            "state": state,
            "context": STATUS_CONTEXT,
            "description": text if len(text) <= 140 else text[:137] + "...",
        }


def judge_report(report: Report, *, policy: EvaluateParams, source: str, self_reported: bool = False) -> ReportVerdict:
    """The verdict on `report` under `policy`: its failure, stale outputs or invalid params fail it; otherwise the
    gate on the PR's metrics and, when the report holds one, its comparison with the base on the same rows."""
    problems: list[str] = []
    if report.failure is not None:
        problems.append("the pipeline failed (see below)")
    if report.params_error is not None:
        problems.append("the PR's params.yaml is invalid (see below)")
    if report.stale:
        problems.append(f"{len(report.stale)} committed output(s) are stale (listed below)")
    if report.failure is None and report.pr.metrics is None:
        problems.append("the PR's pipeline wrote no metrics")
    if report.pr.metrics is None:
        return ReportVerdict(tuple(problems), source, self_reported=self_reported)
    comparison = report.comparison.to_comparison() if report.comparison is not None else None
    verdict = gate.judge(report.pr.metrics, policy, comparison=comparison)
    return ReportVerdict(tuple(problems), source, verdict, self_reported)
