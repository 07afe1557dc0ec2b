from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mltemplate.params import DataParams, Params, SplitParams, parse_params
from mltemplate.pipeline.prepare import example, prepare, read_raw, row_ids, split, validate
from mltemplate.schema import ROW_ID, DataError
from tests.conftest import ROOT

MIXED = DataParams(raw=Path("data/raw/mixed.csv"), target="outcome", positive_class="sick", categorical=["site"])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "raw.csv"
    path.write_text(text)
    return path


def as_text(frame: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    return read_raw(write(tmp_path, frame.to_csv(index=False)))


def test_valid_csv_gives_typed_frame_and_schema(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame, schema = validate(as_text(mixed_frame, tmp_path), MIXED)
    assert schema.numeric == ("age", "dose")
    assert schema.categorical == ("site",)
    assert frame["age"].dtype == "float64"
    assert frame["dose"].isna().sum() == 2
    assert set(frame["outcome"]) == {"sick", "well"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["site"]), r"missing column 'site'"),
        (lambda f: f.drop(columns=["outcome"]), r"missing column 'outcome'"),
        (lambda f: f.assign(dose=f["dose"].astype(object).where(f.index != 7, "high")), r"column 'dose': value 'high'"),
        (lambda f: f.assign(age=f["age"].astype(object).where(f.index != 2, "inf")), r"column 'age': value 'inf'"),
        (lambda f: f.assign(outcome=f["outcome"].where(f.index != 4, None)), r"target column 'outcome': 1 rows"),
        (lambda f: f.assign(outcome="sick"), r"target column 'outcome' has a single class"),
        (lambda f: f.assign(outcome=["a", "b", "c", "d"] * 20), r"has 4 classes"),
        (lambda f: f.assign(outcome=f["outcome"].replace("sick", "ill")), r"positive_class 'sick' is not a value"),
        (lambda f: f.head(0), r"no data rows"),
    ],
)
def test_bad_csv_fails_naming_the_column(mixed_frame: pd.DataFrame, tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=message) as caught:
        validate(as_text(change(mixed_frame), tmp_path), MIXED)
    assert "\n" not in str(caught.value)


def test_unexpected_column_fails_when_features_are_listed(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    listed = MIXED.model_copy(update={"features": ["age", "site"]})
    with pytest.raises(DataError, match=r"unexpected column 'dose'"):
        validate(as_text(mixed_frame, tmp_path), listed)


def test_dropped_columns_are_not_features(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    _, schema = validate(as_text(mixed_frame, tmp_path), MIXED.model_copy(update={"drop": ["dose"]}))
    assert schema.features == ("age", "site")


def test_drop_of_an_absent_column_is_named(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.drop names column 'id'"):
        validate(as_text(mixed_frame, tmp_path), MIXED.model_copy(update={"drop": ["id"]}))


def test_empty_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"raw.csv: file is empty"):
        read_raw(write(tmp_path, ""))


def test_missing_file_points_to_make_data(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"file not found \(run `make data`\)"):
        read_raw(tmp_path / "nope.csv")


def test_split_is_stratified_and_deterministic(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame, schema = validate(as_text(mixed_frame, tmp_path), MIXED)
    train, test = split(frame, schema, SplitParams(test_size=0.25), seed=3)
    again, _ = split(frame, schema, SplitParams(test_size=0.25), seed=3)
    assert len(test) == 20
    assert train.equals(again)
    share = frame["outcome"].eq("sick").mean()
    assert abs(test["outcome"].eq("sick").mean() - share) < 0.06
    assert set(train.index).isdisjoint(test.index)


def test_example_is_a_held_out_row_without_the_target(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame, schema = validate(as_text(mixed_frame, tmp_path), MIXED)
    _, test = split(frame, schema, SplitParams(test_size=0.25), seed=0)
    body = example(test, schema)
    (record,) = body["records"]
    assert list(record) == list(schema.features)
    assert all(value is not None for value in record.values())  # a complete row when there is one
    row = test[list(schema.features)].dropna().iloc[0]
    assert record == {k: (float(v) if k in schema.numeric else v) for k, v in row.items()}
    json.dumps(body, allow_nan=False)  # valid JSON: no NaN


def _regression(mixed_frame: pd.DataFrame) -> pd.DataFrame:
    return mixed_frame.assign(outcome=mixed_frame["age"] * 2 + 1)


REGRESSION = DataParams(raw=Path("r.csv"), target="outcome", task="regression", categorical=["site"])


def test_regression_target_is_read_as_numbers(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame, schema = validate(as_text(_regression(mixed_frame), tmp_path), REGRESSION)
    assert (schema.task, frame["outcome"].dtype) == ("regression", "float64")


def test_a_regression_target_that_is_not_a_number_is_named(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"target column 'outcome': value 'well' on data row 1 is not a finite number"):
        validate(as_text(mixed_frame, tmp_path), REGRESSION)


def test_regression_split_is_seeded_and_not_stratified(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame, schema = validate(as_text(_regression(mixed_frame), tmp_path), REGRESSION)
    train, test = split(frame, schema, SplitParams(test_size=0.25), seed=3)
    again, _ = split(frame, schema, SplitParams(test_size=0.25), seed=3)
    assert len(test) == 20
    assert train.index.equals(again.index)


def test_multiclass_takes_more_than_two_classes(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    three = mixed_frame.assign(outcome=["a", "b", "c", "d"] * 20)
    params = DataParams(raw=Path("m.csv"), target="outcome", task="multiclass", categorical=["site"])
    frame, schema = validate(as_text(three, tmp_path), params)
    _train, test = split(frame, schema, SplitParams(test_size=0.25), seed=0)
    assert test["outcome"].value_counts().to_dict() == {"a": 5, "b": 5, "c": 5, "d": 5}


def test_binary_refuses_more_classes_and_points_to_multiclass(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    three = mixed_frame.assign(outcome=["sick", "well", "unsure", "sick"] * 20)
    with pytest.raises(DataError, match=r"has 3 classes .*data.task is binary \(set it to multiclass\)"):
        validate(as_text(three, tmp_path), MIXED)


def mixed_params(**data: object) -> Params:
    """The repository's params.yaml over the mixed test data (the test's own data params, a classifier it has)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["data"] = {**MIXED.model_dump(mode="json"), **data}
    raw["model"] = {"estimator": "logistic_regression", "hyperparameters": {}}
    raw["evaluate"] = {}
    raw["monitor"] = {**raw.get("monitor", {}), "thresholds": {}}
    return parse_params(raw)


def test_the_held_out_split_keeps_every_column_of_the_csv(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    with_band = mixed_frame.assign(band=["young", "old"] * 40)
    train, test, schema = prepare(as_text(with_band, tmp_path), mixed_params(drop=["band"]))
    assert "band" not in schema.features
    assert list(train.columns) == [*schema.features, "outcome", ROW_ID]
    assert list(test.columns) == [*schema.features, "outcome", ROW_ID, "band"]


def test_every_row_carries_its_content_id_in_any_split(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    raw = as_text(pd.concat([mixed_frame, mixed_frame.iloc[[0]]], ignore_index=True), tmp_path)
    ids = row_ids(raw)
    assert ids.iloc[0] == ids.iloc[-1]  # the same content, the same id
    assert ids.iloc[:-1].is_unique
    train, test, _ = prepare(raw, mixed_params())
    reseeded, _, _ = prepare(raw, mixed_params().model_copy(update={"seed": 99}))
    assert set(train[ROW_ID]) | set(test[ROW_ID]) == set(ids)
    assert set(train[ROW_ID]) != set(reseeded[ROW_ID])  # another split, the same ids
