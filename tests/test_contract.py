"""The data contract: inferred from a CSV, written and read back, and enforced on lost, added or retyped columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mltemplate import contract
from mltemplate.pipeline.prepare import read_raw
from mltemplate.schema import DataError

SOURCE = Path("data/raw/mixed.csv")


def as_text(frame: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "raw.csv"
    path.write_text(frame.to_csv(index=False))
    return read_raw(path)


@pytest.fixture
def expected(mixed_frame: pd.DataFrame, tmp_path: Path) -> contract.Contract:
    return contract.infer(as_text(mixed_frame, tmp_path))


def test_infer_types_numbers_and_categories_with_their_values(expected: contract.Contract) -> None:
    assert expected.columns["age"] == contract.Column("number")
    assert expected.columns["dose"] == contract.Column("number")  # missing values do not make it a category
    assert expected.columns["site"] == contract.Column("category", ("east", "north", "south"))
    assert expected.columns["outcome"].values == ("sick", "well")


def test_many_distinct_values_are_recorded_without_them(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [f"c{i}" for i in range(contract.MAX_VALUES + 1)]})
    assert contract.infer(as_text(frame, tmp_path)).columns["id"] == contract.Column("category", None)


def test_contract_round_trips_through_its_file(expected: contract.Contract, tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    contract.write(expected, source=SOURCE, path=path)
    assert contract.read(path) == expected
    assert "data/raw/mixed.csv" in path.read_text()


def test_the_same_data_passes(expected: contract.Contract, mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    contract.check(as_text(mixed_frame, tmp_path), expected, source=SOURCE)


def test_new_category_values_pass(expected: contract.Contract, mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    contract.check(as_text(mixed_frame.assign(site="west"), tmp_path), expected, source=SOURCE)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: f.drop(columns=["dose"]), ["lost column 'dose'"]),
        (lambda f: f.assign(weight=1.0), ["added column 'weight'"]),
        (
            lambda f: f.assign(age=f["age"].astype(object).where(f.index != 4, "old")),
            ["column 'age': value 'old' on data row 5 is not a finite number"],
        ),
        (
            lambda f: f.drop(columns=["dose", "site"]).assign(bmi=2.0),
            ["lost column 'dose'", "lost column 'site'", "added column 'bmi'"],
        ),
    ],
    ids=["lost", "added", "retyped", "all at once"],
)
def test_changed_columns_fail_naming_each(
    expected: contract.Contract,
    mixed_frame: pd.DataFrame,
    tmp_path: Path,
    change,
    named: list[str],  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(DataError) as caught:
        contract.check(as_text(change(mixed_frame), tmp_path), expected, source=SOURCE)
    message = str(caught.value)
    assert all(part in message for part in named), message
    assert contract.ACCEPT in message
    assert "\n" not in message


def test_differences_say_what_a_new_contract_changes(expected: contract.Contract) -> None:
    changed = contract.Contract(
        {**{k: v for k, v in expected.columns.items() if k != "dose"}, "site": contract.Column("number")}
    )
    assert contract.differences(expected, changed) == [
        "lost column 'dose'",
        "column 'site' was category, is now number",
    ]
    assert contract.differences(expected, expected) == []


@pytest.mark.parametrize("text", ["", "columns: [a, b]", "columns: {a: {type: text}}", "{not yaml"])
def test_a_broken_contract_file_says_how_to_rewrite_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=r"rewrite it with `python -m mltemplate.pipeline.data contract`"):
        contract.read(path)


def test_a_missing_contract_says_how_to_write_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found: write it"):
        contract.read(tmp_path / "contract.yaml")


def test_rows_outside_the_contract_are_found_one_by_one() -> None:
    expected = contract.Contract(
        {
            "x": contract.Column("number"),
            "kind": contract.Column("category", ("a", "b")),
            "note": contract.Column("category"),
        }
    )
    raw = pd.DataFrame(
        {
            "x": ["1.5", "inf", "", "2", "two"],
            "kind": ["a", "b", "a", "c", None],
            "note": ["anything", "at", "all", "is", "fine"],
        },
        dtype=object,
    )
    assert contract.breaches(raw, expected).tolist() == [False, True, False, True, True]
