"""mltemplate.columns: columnar input gets the frame, and so the answers, that records get, and every value POST
/predict would refuse is named with its feature and row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltemplate import columns
from mltemplate.predict import to_frame
from mltemplate.schema import Schema

MIXED = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")
NUMERIC = Schema(numeric=("age", "dose"), categorical=(), target="outcome", positive_class="sick")


def test_json_columns_give_the_frame_records_give() -> None:
    data = {"age": [61, 30.5], "dose": [4.0, None], "site": ["north", None]}
    frame = columns.checked(data, MIXED, nullable={"dose", "site"}).frame()
    records = [dict(zip(data, row, strict=True)) for row in zip(*data.values(), strict=True)]
    pd.testing.assert_frame_equal(frame, to_frame(records, MIXED), check_exact=True)
    assert to_frame(frame, MIXED) is frame  # already the fitted frame: not copied again


def test_typed_arrays_and_series_are_taken_as_they_are() -> None:
    data = {"age": np.array([1, 2], dtype=np.int64), "dose": pd.Series([0.5, 1.5]), "site": np.array(["a", "b"])}
    frame = columns.checked(data, MIXED).frame()
    assert frame.dtypes.tolist() == [np.float64, np.float64, object]
    assert frame["site"].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("column", "values", "reason", "rows"),
    [
        ("age", [1.0, "2"], "is not a number", [1]),
        ("age", [True, 2.0], "is not a number", [0]),
        ("age", [1.0, None], "is null", [1]),
        ("age", [float("inf"), 2.0], "is not a finite number", [0]),
        ("age", [9**400, 1.0], "is beyond float64 range", [0]),
        ("age", np.array([True, False]), "holds bool, not numbers", [0, 1]),
        ("site", ["a", 3], "is not text", [1]),
        ("site", [None, "b"], "is null", [0]),
        ("site", ["x" * 1001, "b"], "longer than 1000", [0]),
        ("site", np.array([1, 2]), "not text", [0, 1]),
    ],
)
def test_each_bad_value_is_named_with_its_feature_and_row(
    column: str, values: list[object], reason: str, rows: list[int]
) -> None:
    data: dict[str, object] = {"age": [1.0, 2.0], "dose": [1.0, 2.0], "site": ["a", "b"], column: values}
    block, problems = columns.check(data, MIXED)  # type: ignore[arg-type]
    (problem,) = problems
    assert (problem.feature, problem.rows.tolist()) == (column, rows)
    assert reason in problem.describe()
    assert len(block) == 2  # the bad value is null in the frame; the caller drops bad_rows
    assert columns.bad_rows(problems).tolist() == rows


def test_nullable_features_take_null() -> None:
    block = columns.checked({"age": [None, 1.0], "dose": [1.0, 2.0]}, NUMERIC, nullable={"age"})
    assert np.isnan(block.numeric[0, 0])


def test_missing_and_unknown_columns_are_refused_by_name() -> None:
    with pytest.raises(columns.ColumnsError, match=r"'dose' is missing.*'extra' is not a feature"):
        columns.check({"age": [1.0], "extra": [1]}, NUMERIC)


def test_unknown_columns_can_be_ignored() -> None:
    block, problems = columns.check({"age": [1.0], "dose": [2.0], "extra": ["x"]}, NUMERIC, extra="ignore")
    assert (list(block.frame().columns), problems) == (["age", "dose"], [])


def test_columns_of_unequal_length_are_refused() -> None:
    with pytest.raises(columns.ColumnsError, match=r"'dose' has 1 values, 'age' 2"):
        columns.check({"age": [1.0, 2.0], "dose": [1.0]}, NUMERIC)


def test_a_numeric_array_is_one_block_and_its_non_finite_values_are_named() -> None:
    matrix = np.array([[1.0, 2.0], [3.0, 4.0]])
    block = columns.matrix_block(matrix, NUMERIC)
    pd.testing.assert_frame_equal(block.frame(), to_frame([(1.0, 2.0), (3.0, 4.0)], NUMERIC), check_exact=True)
    matrix[1, 1] = np.inf
    with pytest.raises(columns.ColumnsError, match=r"'dose' is not a finite number \(row 1: inf\)"):
        columns.matrix_block(matrix, NUMERIC)


def test_blocks_concatenate_and_take_rows_as_frames_do() -> None:
    one = columns.checked({"age": [1.0], "dose": [2.0], "site": ["a"]}, MIXED)
    two = columns.checked(
        {"age": [3.0, 4.0], "dose": [5.0, None], "site": [None, "b"]}, MIXED, nullable={"dose", "site"}
    )
    merged = columns.Block.concat([one, two])
    expected = pd.concat([one.frame(), two.frame()], ignore_index=True)
    pd.testing.assert_frame_equal(merged.frame(), expected, check_exact=True)
    pd.testing.assert_frame_equal(merged.take(np.array([False, True, True])).frame(), two.frame(), check_exact=True)
