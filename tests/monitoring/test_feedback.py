"""Ground-truth labels: every problem is reported per item, a re-sent submission is recognised as the same one, and
only labels naming a record the service answered are accepted, the others named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mltemplate.monitoring import feedback
from mltemplate.monitoring.feedback import Label, Resolved

CLASSES = ["no", "yes"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"labels": [], "extra": 1}, "body"),
        ({"submission_id": "s"}, "body"),
        ({"labels": []}, "labels"),
        ({"labels": ["one"]}, "labels.0"),
        ({"labels": [{"request_id": "one"}]}, "labels.0.label"),
        ({"labels": [{"request_id": "one", "label": "maybe"}]}, "labels.0.label"),
        ({"labels": [{"request_id": "bad id!", "label": "no"}]}, "labels.0.request_id"),
        ({"labels": [{"request_id": "one", "label": "no", "position": -1}]}, "labels.0.position"),
        ({"labels": [{"request_id": "one", "label": "no", "when": 1}]}, "labels.0.when"),
        ({"labels": [{"request_id": "one", "label": "no"}], "submission_id": "a b"}, "submission_id"),
        ({"labels": [{"request_id": "one", "label": "no"}], "all_or_nothing": "yes"}, "all_or_nothing"),
    ],
)
def test_malformed_bodies_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(feedback.FeedbackError) as caught:
        feedback.parse(body, CLASSES)
    assert caught.value.problems[0].field == field


def test_every_bad_item_is_listed_not_just_the_first() -> None:
    body = {"labels": [{"request_id": "a", "label": "x"}, {"request_id": "b", "label": "no"}, {"request_id": "c"}]}
    with pytest.raises(feedback.FeedbackError) as caught:
        feedback.parse(body, CLASSES)
    assert [p.index for p in caught.value.problems] == [0, 2]


def test_integer_labels_match_text_classes() -> None:
    assert feedback.parse({"labels": [{"request_id": "a", "label": 1}]}, ["0", "1"]).labels[0].label == "1"


def test_the_same_labels_sent_again_are_the_same_submission() -> None:
    items = [{"request_id": "a", "label": "yes"}, {"request_id": "b", "position": 1, "label": "no"}]
    first = feedback.parse({"labels": items}, CLASSES)
    again = feedback.parse({"labels": items[::-1]}, CLASSES)
    other = feedback.parse({"labels": [{**items[0], "label": "no"}, items[1]]}, CLASSES)
    assert first.key() == again.key() != other.key()
    assert first.key().startswith("auto-")


def test_a_client_submission_id_names_the_submission() -> None:
    body = {"labels": [{"request_id": "a", "label": "yes"}], "submission_id": "batch-7", "all_or_nothing": True}
    submission = feedback.parse(body, CLASSES)
    assert (submission.key(), submission.all_or_nothing) == ("batch-7", True)


def test_labels_of_answered_records_are_accepted_and_the_others_named() -> None:
    labels = [Label("one", None, "yes"), Label("ghost", None, "no"), Label("two", 1, "no")]
    accepted, problems = feedback.resolve(labels, {"one": 1, "two": 2})
    assert accepted == [Resolved("one", 0, "yes"), Resolved("two", 1, "no")]
    assert [p.to_dict() for p in problems] == [
        {"index": 1, "field": "labels.1.request_id", "error": "unknown request id 'ghost'"}
    ]


def test_an_id_that_could_not_be_checked_says_why() -> None:
    _, problems = feedback.resolve([Label("old", None, "no")], {}, unchecked={"old": "the database is down"})
    assert problems[0].error == "the database is down"


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (Label("two", None, "no"), "labels.1.position", "held 2 records"),
        (Label("two", 2, "no"), "labels.1.position", "position 2 does not exist"),
        (Label("one", 0, "no"), "labels.1", "labelled twice"),
    ],
)
def test_a_label_for_no_record_of_its_request_is_named(bad: Label, field: str, message: str) -> None:
    accepted, problems = feedback.resolve([Label("one", None, "yes"), bad], {"one": 1, "two": 2})
    assert accepted == [Resolved("one", 0, "yes")]
    assert problems[0].field == field
    assert message in problems[0].error


def test_problems_of_csv_labels_name_the_file_and_line() -> None:
    _, problems = feedback.resolve([Label("ghost", None, "no")], {}, where="labels.csv", first_line=2)
    assert problems[0].field == "labels.csv:2.request_id"


def test_csv_labels_are_read_with_an_optional_position(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label,position\none,yes,\ntwo,no,1\n")
    assert feedback.read_csv(path, CLASSES) == [Label("one", None, "yes"), Label("two", 1, "no")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,label\none,yes\n", "column 'request_id'"),
        ("request_id,label,score\none,yes,1\n", "column 'score'"),
        ("request_id,label\n", "only a header"),
        ("request_id,label\none,yes\ntwo,maybe\n", "labels.csv:3.label"),
    ],
)
def test_csv_problems_name_the_column_or_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(feedback.FeedbackError, match=message):
        feedback.read_csv(path, CLASSES)


@pytest.mark.parametrize(("given", "stored"), [(151.25, "151.25"), (3, "3.0"), ("-0.5", "-0.5")])
def test_a_regression_label_is_a_number(given: object, stored: str) -> None:
    assert feedback.parse({"labels": [{"request_id": "a", "label": given}]}, None).labels[0].label == stored


@pytest.mark.parametrize("given", ["high", "nan", "inf", True, None, [1.0]])
def test_a_regression_label_that_is_not_a_finite_number_is_refused(given: object) -> None:
    with pytest.raises(feedback.FeedbackError, match=r"labels\.0\.label: .* is not a finite number"):
        feedback.parse({"labels": [{"request_id": "a", "label": given}]}, None)
