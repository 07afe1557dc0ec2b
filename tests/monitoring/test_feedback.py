"""Ground-truth labels: every problem is reported per item, and a call stores all of its labels or none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mltemplate.monitoring import feedback, migrations, store

CLASSES = ["no", "yes"]


@pytest.fixture
def db(tmp_path: Path) -> sa.Engine:
    engine = migrations.open_store(f"sqlite:///{tmp_path / 'log.db'}")
    rows = [
        {
            "request_id": rid,
            "position": pos,
            "ts": 1.0,
            "model_version": "v",
            "features": {},
            "label": "no",
            "probabilities": {},
        }
        for rid, pos in [("one", 0), ("two", 0), ("two", 1)]
    ]
    with engine.begin() as connection:
        store.write_predictions(connection, rows)
    return engine


def labels_in(db: sa.Engine) -> list[tuple[str, int, str]]:
    with db.connect() as connection:
        query = sa.select(store.feedback.c.request_id, store.feedback.c.position, store.feedback.c.label)
        return sorted((str(r), int(p), str(label)) for r, p, label in connection.execute(query))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"labels": [], "extra": 1}, "body"),
        ({"labels": []}, "labels"),
        ({"labels": ["one"]}, "labels.0"),
        ({"labels": [{"request_id": "one"}]}, "labels.0.label"),
        ({"labels": [{"request_id": "one", "label": "maybe"}]}, "labels.0.label"),
        ({"labels": [{"request_id": "bad id!", "label": "no"}]}, "labels.0.request_id"),
        ({"labels": [{"request_id": "one\n", "label": "no"}]}, "labels.0.request_id"),
        ({"labels": [{"request_id": "one", "label": "no", "position": -1}]}, "labels.0.position"),
        ({"labels": [{"request_id": "one", "label": "no", "when": 1}]}, "labels.0.when"),
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
    assert feedback.parse({"labels": [{"request_id": "a", "label": 1}]}, ["0", "1"])[0].label == "1"


def test_labels_for_logged_records_are_stored(db: sa.Engine) -> None:
    labels = feedback.parse(
        {"labels": [{"request_id": "one", "label": "yes"}, {"request_id": "two", "position": 1, "label": "no"}]},
        CLASSES,
    )
    assert feedback.store_labels(db, labels) == 2
    assert labels_in(db) == [("one", 0, "yes"), ("two", 1, "no")]


def test_a_later_label_replaces_the_earlier_one(db: sa.Engine) -> None:
    for label in ("yes", "no"):
        feedback.store_labels(db, [feedback.Label("one", None, label)])
    assert labels_in(db) == [("one", 0, "no")]


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (feedback.Label("ghost", None, "no"), "labels.1.request_id", "unknown request id 'ghost'"),
        (feedback.Label("two", None, "no"), "labels.1.position", "held 2 records"),
        (feedback.Label("two", 2, "no"), "labels.1.position", "position 2 does not exist"),
        (feedback.Label("one", 0, "no"), "labels.1", "labelled twice"),
    ],
)
def test_one_bad_label_stores_nothing(db: sa.Engine, bad: feedback.Label, field: str, message: str) -> None:
    with pytest.raises(feedback.FeedbackError, match="nothing was stored") as caught:
        feedback.store_labels(db, [feedback.Label("one", None, "yes"), bad])
    assert caught.value.problems[0].field == field
    assert message in caught.value.problems[0].error
    assert labels_in(db) == []


def test_csv_labels_are_read_with_an_optional_position(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label,position\none,yes,\ntwo,no,1\n")
    assert feedback.read_csv(path, CLASSES) == [feedback.Label("one", None, "yes"), feedback.Label("two", 1, "no")]


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


def test_problems_of_csv_labels_name_the_file_and_line(db: sa.Engine) -> None:
    labels = [feedback.Label("one", None, "yes"), feedback.Label("ghost", None, "no")]
    with pytest.raises(feedback.FeedbackError, match=r"^labels.csv:3.request_id: unknown request id 'ghost'"):
        feedback.store_labels(db, labels, where="labels.csv", first_line=2)


@pytest.mark.parametrize(("given", "stored"), [(151.25, "151.25"), (3, "3.0"), ("-0.5", "-0.5")])
def test_a_regression_label_is_a_number(given: object, stored: str) -> None:
    assert feedback.parse({"labels": [{"request_id": "a", "label": given}]}, None)[0].label == stored


@pytest.mark.parametrize("given", ["high", "nan", "inf", True, None, [1.0]])
def test_a_regression_label_that_is_not_a_finite_number_is_refused(given: object) -> None:
    with pytest.raises(feedback.FeedbackError, match=r"labels\.0\.label: .* is not a finite number"):
        feedback.parse({"labels": [{"request_id": "a", "label": given}]}, None)
