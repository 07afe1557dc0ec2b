"""escape.py and every string of a hostile artifact: nothing it holds reaches the comment raw (no link, image,
mention, heading, entity or table cell of its own), in every table and in the gate's failure list, and the commit
status stays plain ASCII."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mltemplate.report import comment, render
from mltemplate.report.escape import code, pre
from mltemplate.report.schema import MAX_TEXT, Report, Side
from mltemplate.report.verdict import judge_report
from tests.report.samples import HOSTILE, POLICY, RAW_FRAGMENTS, hostile_report, refused_comparison
from tests.report.test_artifact import png, write_artifact

INERT = r"(?:[A-Za-z0-9 .,\-]|&#\d+;)*"
"""What escaped text may hold: letters, digits, a few punctuation marks and numeric entities."""


@pytest.mark.parametrize("text", HOSTILE)
def test_code_leaves_only_letters_digits_and_entities_on_one_line(text: str) -> None:
    assert re.fullmatch(f"<code>{INERT}</code>", code(text))


@pytest.mark.parametrize("text", HOSTILE)
def test_pre_leaves_only_letters_digits_entities_and_its_lines(text: str) -> None:
    escaped = pre(text)
    assert re.fullmatch(f"<pre>(?:{INERT}\n?)*</pre>", escaped)
    assert escaped.count("\n") == text.count("\n")


def test_code_cuts_long_text_to_the_artifact_s_cap() -> None:
    assert code("a" * (MAX_TEXT + 50)) == f"<code>{'a' * (MAX_TEXT - 1)}&#8230;</code>"


def test_the_dot_of_www_is_an_entity_so_github_links_nothing() -> None:
    assert code("see WWW.host.example") == "<code>see WWW&#46;host.example</code>"


@pytest.fixture(params=["artifact", "trusted run"])
def route(request: pytest.FixtureRequest) -> str:
    """Which report the comment shows: the PR's own artifact, or the trusted run's (its strings come from the PR's
    params and data all the same)."""
    return str(request.param)


def make_comment(tmp_path: Path, trusted: Path, report: Report, route: str = "artifact") -> str:
    artifact = write_artifact(tmp_path / "artifact", report, **{"pr_roc.png": png()})
    runs: list[str] = []
    if route == "trusted run":
        verdict = write_artifact(tmp_path / "verdict", report.model_copy(update={"trust": "trusted"}))
        runs = ["--verdict", str(verdict)]
    comment.main([str(artifact), "--out", str(tmp_path / "out"), "--params", str(trusted), *runs])
    return (tmp_path / "out" / "comment.md").read_text(encoding="utf-8")


def test_hostile_text_never_reaches_the_comment_raw(tmp_path: Path, trusted: Path, route: str) -> None:
    text = make_comment(tmp_path, trusted, hostile_report(), route)
    for fragment in RAW_FRAGMENTS:
        assert fragment not in text, fragment
    assert "](" not in text  # no link and no image at all
    assert text.count(render.MARKER) == 1
    assert "&#64;octocat" in text  # shown, escaped


def test_artifact_text_is_only_inside_code_or_pre(tmp_path: Path, trusted: Path, route: str) -> None:
    text = make_comment(tmp_path, trusted, hostile_report(), route)
    outside = re.sub(r"<code>.*?</code>|<pre>.*?</pre>", "", text, flags=re.DOTALL)
    assert "&#" not in outside  # every escaped (artifact) string sits in a code span or a pre block


def test_every_table_row_keeps_its_columns(tmp_path: Path, trusted: Path, route: str) -> None:
    text = make_comment(tmp_path, trusted, hostile_report(), route)
    tables: dict[str, set[int]] = {}
    header = ""
    for line in text.splitlines():
        if not line.startswith("|"):
            header = ""
            continue
        header = header or line
        tables.setdefault(header, set()).add(line.count("|"))
    assert any("Group" in h for h in tables)  # the per-group table is there
    assert {h: len(widths) for h, widths in tables.items()} == {h: 1 for h in tables}


def test_group_names_in_the_gate_s_failure_list_are_escaped(tmp_path: Path, trusted: Path, route: str) -> None:
    text = make_comment(tmp_path, trusted, hostile_report(), route)
    failures = text.split("### ❌ Quality gate failed")[1].split("\nPolicy (")[0]
    groups = [line for line in failures.splitlines() if "slices.sex." in line]
    assert len(groups) == len(HOSTILE)  # each hostile group of the trusted slice column, judged and named
    for line in groups:
        assert re.fullmatch(f"- <code>slices.sex.{INERT}.recall</code> is confidently worse than the base: .*", line)
    named = [line for line in failures.splitlines() if line.startswith("- <code>")]
    assert all("&#" not in re.sub(r"<code>.*?</code>", "", line) for line in named)


def test_a_reason_not_to_compare_is_shown_escaped(tmp_path: Path, trusted: Path) -> None:
    text = make_comment(tmp_path, trusted, refused_comparison())
    (line,) = [line for line in text.splitlines() if line.startswith("Not compared on the same rows: ")]
    assert re.fullmatch(
        f"Not compared on the same rows: <code>{INERT}</code>. The gate applies the thresholds only.", line
    )
    for fragment in RAW_FRAGMENTS:
        assert fragment not in line, fragment


def test_the_status_description_stays_plain_ascii(tmp_path: Path, trusted: Path, route: str) -> None:
    make_comment(tmp_path, trusted, hostile_report(), route)
    description = json.loads((tmp_path / "out" / "status.json").read_text())["description"]
    assert re.fullmatch(r"[ -~]{1,140}", description)
    assert "`" not in description
    assert "failed: the pipeline failed" in description


def test_file_names_a_pr_changes_are_shown_escaped(tmp_path: Path, trusted: Path) -> None:
    listed = Report(base_ref="main", base=Side(label="main"), pr=Side(label="PR"), code_changes=HOSTILE)
    verdict = write_artifact(tmp_path / "verdict", listed.model_copy(update={"trust": "trusted"}))
    artifact = write_artifact(tmp_path / "artifact", hostile_report())
    comment.main([str(artifact), "--out", str(tmp_path / "out"), "--params", str(trusted), "--verdict", str(verdict)])
    text = (tmp_path / "out" / "comment.md").read_text(encoding="utf-8")
    (line,) = [line for line in text.splitlines() if line.startswith("This PR changes more than params and data")]
    assert "&#" not in re.sub(r"<code>.*?</code>", "", line)
    for fragment in RAW_FRAGMENTS:
        assert fragment not in text, fragment


def test_a_long_status_description_is_cut_in_ascii() -> None:
    status = judge_report(hostile_report(), policy=POLICY, source="trusted").status()
    assert len(status["description"]) == 140
    assert status["description"].isascii()
