"""render.py: the comment's markdown from validated report data: the verdict, policy changes with their warnings,
both models on the same rows with intervals (overall and per group), thresholds, serving cost, importance, plots."""

from __future__ import annotations

import pytest

from mltemplate.params import EvaluateParams
from mltemplate.report import render
from mltemplate.report.schema import ComparisonData, GroupData, LoadRun, Serving, ServingSide
from mltemplate.report.verdict import ReportVerdict, judge_report
from tests.report.samples import POLICY, comparison, difference, report


def comparison_text(found: ComparisonData | None) -> str:
    return "\n".join(render.render_comparison(found))


def test_the_comparison_shows_base_pr_difference_interval_and_verdict_per_metric() -> None:
    found = comparison(difference("accuracy", 0.9, -0.01, 0.03), difference("log_loss", 0.2, 0.05, 0.15))
    text = comparison_text(found)
    assert "| Metric | Base | PR | Difference | 95% interval | Verdict |" in text
    assert (
        "| <code>accuracy</code> | 0.9000 | 0.9100 | +0.0100 | [-0.0100, +0.0300] | ⚪ no measurable difference |"
        in text
    )
    assert "| <code>log&#95;loss</code> | 0.2000 | 0.3000 | +0.1000 | [+0.0500, +0.1500] | 🔴 worse |" in text


def test_the_comparison_says_how_many_rows_and_what_the_interval_means() -> None:
    text = comparison_text(comparison(rows=143, resamples=1000))
    assert "Both models scored on the **143** held-out rows that neither was trained on" in text
    assert (
        "The interval holds PR minus base with 95% confidence (a paired bootstrap: 1,000 seeded resamples of "
        "these rows, the same rows for both models); when it contains 0 the difference is within noise."
    ) in text
    assert "(the base's model <code>reproduced from main&#39;s code and dvc.lock</code>)" in text


def test_a_better_metric_and_one_without_an_interval_are_marked() -> None:
    undefined = difference("roc_auc", 0.9).model_copy(update={"low": None, "high": None})
    text = comparison_text(comparison(difference("recall", 0.8, 0.02, 0.1), undefined))
    assert "| <code>recall</code> | 0.8000 | 0.8600 | +0.0600 | [+0.0200, +0.1000] | 🟢 better |" in text
    assert "| <code>roc&#95;auc</code> | 0.9000 | 0.9100 | +0.0100 | — | ⚫ too few rows |" in text


def test_the_comparison_notes_are_shown() -> None:
    text = comparison_text(comparison(notes=["compared on a seeded sample of 20,000 of the 50,000 shared rows"]))
    assert "Note: <code>compared on a seeded sample of 20,000 of the 50,000 shared rows</code>." in text


def test_the_per_group_table_has_each_group_s_rows_and_marks_small_groups() -> None:
    groups = (
        GroupData(column="sex", value="F", rows=60, differences=[difference("recall", 0.9, -0.3, -0.1)]),
        GroupData(column="sex", value="X", rows=4),
    )
    lines = render.render_comparison(comparison(groups=groups))
    header = "| Column | Group | Rows | Metric | Base | PR | Difference | 95% interval | Verdict |"
    assert header in lines
    where = "| <code>sex</code> | <code>F</code> | 60 | <code>recall</code>"
    assert f"{where} | 0.9000 | 0.7000 | -0.2000 | [-0.3000, -0.1000] | 🔴 worse |" in lines
    assert "| <code>sex</code> | <code>X</code> | 4 | | | | | | ⚫ too few rows |" in lines
    table = lines[lines.index(header) :]
    assert {line.count("|") for line in table if line.startswith("|")} == {header.count("|")}


def test_a_comparison_with_a_reason_says_why_and_that_only_thresholds_apply() -> None:
    text = comparison_text(ComparisonData(reason="the candidate's held-out rows have no column 'age'"))
    assert text.startswith(
        "Not compared on the same rows: <code>the candidate&#39;s held-out rows have no column &#39;age&#39;</code>. "
        "The gate applies the thresholds only."
    )
    assert "| Metric |" not in text


def test_without_a_comparison_the_pipeline_did_not_finish() -> None:
    assert comparison_text(None).startswith("<em>Not compared: the pipeline did not finish.</em>")


def policy_text(base: EvaluateParams, pr: EvaluateParams) -> str:
    return "\n".join(render.render_policy(base, pr))


def test_a_policy_change_that_loosens_the_gate_is_warned_about() -> None:
    text = policy_text(POLICY, POLICY.model_copy(update={"thresholds": {"accuracy": 0.5, "recall": 0.7}}))
    assert text.startswith("### ⚠️ Policy changes")
    assert (
        "| <code>evaluate.thresholds.accuracy</code> | <code>0.8</code> | <code>0.5</code> | ⚠️ loosens the gate |"
        in text
    )
    assert "The trusted verdict applies the base's policy; these changes take effect once merged." in text


def test_a_policy_change_that_tightens_the_gate_is_listed_without_a_warning() -> None:
    text = policy_text(POLICY, POLICY.model_copy(update={"tolerance": 0.01, "slices": ["sex", "age"]}))
    assert text.startswith("### Policy changes")
    assert "⚠️" not in text
    assert "| <code>evaluate.tolerance</code> | <code>0.05</code> | <code>0.01</code> |  |" in text
    assert "| <code>evaluate.slices</code> | <code>&#91;&#34;sex&#34;&#93;</code> |" in text


def test_an_unchanged_policy_shows_no_section() -> None:
    assert render.render_policy(POLICY, POLICY) == []


def test_the_comment_warns_about_policy_changes_and_compares_on_the_same_rows() -> None:
    found = report(comparison=comparison(difference("accuracy", 0.9, -0.2, -0.1)))
    verdict = judge_report(found, policy=POLICY, source="trusted")
    looser = POLICY.model_copy(update={"tolerance": 0.5})
    text = render.render(found, verdict, base_policy=POLICY, pr_policy=looser)
    assert "### ❌ Quality gate failed" in text
    assert "- <code>accuracy</code> is confidently worse than the base" in text
    assert text.index("### ⚠️ Policy changes") < text.index("### Compared with the base on the same rows")
    assert text.index("### Compared with the base on the same rows") < text.index("### Thresholds")


def test_the_thresholds_table_marks_each_metric_against_its_limit() -> None:
    found = report({"accuracy": 0.91, "recall": 0.6})
    verdict = judge_report(found, policy=POLICY, source="trusted")
    text = "\n".join(render.render_thresholds(found, verdict.thresholds))
    assert "| <code>accuracy</code> | 0.9100 | ≥ 0.8000 ✅ |" in text
    assert "| <code>recall</code> | 0.6000 | ≥ 0.7000 ❌ |" in text


def test_stale_files_are_named_in_the_comment() -> None:
    verdict = ReportVerdict(("x",), "trusted")
    text = render.render(report(stale=["dvc.lock", "plots/roc.json"]), verdict)
    assert "### ❌ Stale committed outputs" in text
    assert "- <code>dvc.lock</code>" in text
    assert "- <code>plots&#47;roc.json</code>" in text


def runs(*rps: float) -> list[LoadRun]:
    return [LoadRun(requests=100, errors=0, duration_s=1.0, rps=r, p50_ms=1000 / r, p99_ms=2000 / r) for r in rps]


@pytest.mark.parametrize(
    ("base", "pr", "shown"),
    [
        ([372.0, 613.0, 500.0], [450.0, 520.0, 600.0], "no measurable difference"),
        ([108.9, 109.7], [121.9, 146.9], "no measurable difference"),  # apart, but within the resolution
        ([100.0, 110.0, 105.0], [200.0, 210.0, 190.0], "🟢 +90%"),
        ([200.0, 210.0, 190.0], [100.0, 110.0, 105.0], "🔴 -48%"),
    ],
)
def test_throughput_says_no_measurable_difference_within_the_noise(
    base: list[float], pr: list[float], shown: str
) -> None:
    left, right = render.Spread.of(runs(*base), "rps"), render.Spread.of(runs(*pr), "rps")
    assert render.difference(left, right, higher_is_better=True) == shown


def test_serving_shows_medians_with_their_spread() -> None:
    serving = Serving(concurrency=4, seconds=5.0, base=ServingSide(runs=runs(100, 120, 110)), pr=ServingSide(runs=[]))
    text = "\n".join(render.render_serving(report(serving=serving)))
    assert "| Throughput | 110.0 req/s (100.0 to 120.0) | — | — |" in text
    assert "Medians (min to max) of 3 alternating load runs" in text
