"""serving/invocations.py's parsing against MLflow's own (`mlflow.models.validate_serving_input`, on the model saved
as the train stage logs it: sklearn flavour, skops): every body form gives MLflow's predictions, and bodies either
side refuses are refused here naming the column or the part of the body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature, validate_serving_input
from starlette.testclient import TestClient

from mltemplate import estimators
from mltemplate.diagnosis import Unscorable
from mltemplate.estimators import TRUSTED_TYPES
from mltemplate.model import TrainedModel
from mltemplate.predict import labels, predict, to_frame
from mltemplate.schema import Schema
from mltemplate.serving import invocations
from mltemplate.serving.batching import Overloaded
from mltemplate.serving.scorer import Answer, Refused
from tests.conftest import trained_model

JSON_TYPE = "application/json"
MIXED = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, str, pd.DataFrame]:
    rng = np.random.default_rng(1)
    n = 60
    frame = pd.DataFrame(
        {
            "age": rng.normal(50, 10, n).round(1),
            "dose": rng.normal(5, 2, n).round(2),
            "site": rng.choice(["north", "south", "east"], n).astype(object),
        }
    )
    outcome = np.where(frame["age"] + 5 * (frame["site"] == "north") > 52, "sick", "well")
    estimator = estimators.make_estimator("logistic_regression", {})
    pipeline = estimators.build_pipeline(numeric=MIXED.numeric, categorical=MIXED.categorical, estimator=estimator)
    pipeline.fit(to_frame(frame, MIXED), outcome)
    path = tmp_path_factory.mktemp("mlflow") / "model"
    mlflow.sklearn.save_model(
        pipeline,
        str(path),
        signature=infer_signature(frame, pipeline.predict(frame)),
        serialization_format="skops",
        skops_trusted_types=sorted(TRUSTED_TYPES),
    )
    return trained_model(pipeline, MIXED), str(path), frame.head(7)


def bodies(rows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    records = json.loads(rows.to_json(orient="records"))
    split = json.loads(rows.to_json(orient="split", index=False))
    columns = {name: rows[name].tolist() for name in rows.columns}
    return {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs as columns": {"inputs": columns},
        "inputs as records": {"inputs": records},
        "extra column": {"dataframe_records": [{**r, "note": "ignored"} for r in records]},
    }


def ours(model: TrainedModel, data: dict[str, Any]) -> list[str]:
    block = invocations.checked_block(data, model, max_rows=100)
    return labels(model, predict(model, block.frame()))


@pytest.mark.parametrize("form", list(bodies(pd.DataFrame({"x": [1]}))))
def test_each_json_form_gets_mlflows_predictions(fitted: tuple[TrainedModel, str, pd.DataFrame], form: str) -> None:
    model, uri, rows = fitted
    body = bodies(rows)[form]
    expected = list(validate_serving_input(uri, json.dumps(body)))
    assert ours(model, invocations.from_json(body, model)) == expected


def test_csv_gets_mlflows_predictions(fitted: tuple[TrainedModel, str, pd.DataFrame]) -> None:
    model, uri, rows = fitted
    expected = list(validate_serving_input(uri, json.dumps(bodies(rows)["dataframe_split"])))
    assert ours(model, invocations.from_csv(rows.to_csv(index=False).encode(), model)) == expected


BAD: dict[str, tuple[Any, str, str]] = {
    # case: (body, the field named, words of the message)
    "no format key": ({"rows": []}, "body", "exactly one of"),
    "two format keys": ({"inputs": {}, "instances": []}, "body", "exactly one of"),
    "not an object": ([1, 2], "body", "must be a JSON object"),
    "split without columns": ({"dataframe_split": {"data": [[1]]}}, "dataframe_split", "columns and data"),
    "split row of the wrong width": (
        {"dataframe_split": {"columns": ["age", "dose", "site"], "data": [[1.0, 2.0]]}},
        "dataframe_split.data",
        "rows of 3 values",
    ),
    "records not objects": ({"dataframe_records": [[1.0, 2.0, "a"]]}, "dataframe_records", "list of objects"),
    "missing column": ({"dataframe_records": [{"age": 1.0, "site": "a"}]}, "dose", "'dose' is missing"),
    "text for a number": ({"inputs": {"age": ["x"], "dose": [1.0], "site": ["a"]}}, "age", "is not a number"),
    "number for a category": ({"inputs": {"age": [1.0], "dose": [1.0], "site": [3]}}, "site", "is not text"),
    "null": ({"dataframe_records": [{"age": None, "dose": 1.0, "site": "a"}]}, "age", "is null"),
    "no rows": ({"dataframe_split": {"columns": ["age", "dose", "site"], "data": []}}, "body", "0 rows"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_bodies_are_refused_naming_the_field(fitted: tuple[TrainedModel, str, pd.DataFrame], case: str) -> None:
    model = fitted[0]
    body, field, words = BAD[case]
    with pytest.raises(invocations.BodyError, match=words) as refused:
        invocations.checked_block(invocations.from_json(body, model), model, max_rows=100)
    assert refused.value.field == field


@pytest.mark.parametrize("case", ["two format keys", "not an object", "missing column", "text for a number"])
def test_mlflow_refuses_them_too(fitted: tuple[TrainedModel, str, pd.DataFrame], case: str) -> None:
    with pytest.raises(mlflow.exceptions.MlflowException):
        validate_serving_input(fitted[1], json.dumps(BAD[case][0]))


def test_a_csv_cell_that_is_not_a_number_is_named(fitted: tuple[TrainedModel, str, pd.DataFrame]) -> None:
    body = b"age,dose,site\n61,4.0,north\n30,x,east\n"
    with pytest.raises(invocations.BodyError, match=r"'dose' is not a number \(row 1: 'x'\)"):
        invocations.checked_block(invocations.from_csv(body, fitted[0]), fitted[0], max_rows=100)


def test_too_many_rows_are_refused(fitted: tuple[TrainedModel, str, pd.DataFrame]) -> None:
    model, _, rows = fitted
    with pytest.raises(invocations.BodyError, match=r"7 rows; a request holds 1 to 5"):
        invocations.checked_block(invocations.from_json(bodies(rows)["instances"], model), model, max_rows=5)


NUMERIC = Schema(numeric=("age", "dose", "weight"), categorical=(), target="outcome", positive_class="sick")


@pytest.fixture(scope="module")
def numeric_model() -> TrainedModel:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({name: rng.normal(50, 10, 80).round(1) for name in NUMERIC.numeric})
    outcome = np.where(frame["age"] + frame["dose"] > 100, "sick", "well")
    estimator = estimators.make_estimator("logistic_regression", {})
    pipeline = estimators.build_pipeline(numeric=NUMERIC.numeric, categorical=(), estimator=estimator)
    pipeline.fit(to_frame(frame, NUMERIC), outcome)
    return trained_model(pipeline, NUMERIC)


def _split_body(columns: list[Any], data: list[list[Any]]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": columns, "data": data}}


def test_a_numeric_split_takes_the_matrix_path_and_gives_the_column_paths_block(numeric_model: TrainedModel) -> None:
    # Columns out of schema order, an extra one, integers beside floats: the block is the column path's, row for row.
    body = _split_body(["weight", "note", "age", "dose"], [[70, 1, 41.5, 52.0], [80.25, 2, 60, 49.5]])
    fast = invocations.numeric_split(body, numeric_model)
    assert fast is not None
    slow = invocations.checked_block(invocations.from_json(body, numeric_model), numeric_model, max_rows=10)
    np.testing.assert_array_equal(fast.numeric, slow.numeric)
    assert fast.numeric.flags.c_contiguous
    assert fast.numeric.dtype == np.float64
    assert invocations.json_block(body, numeric_model, max_rows=10).numeric.tolist() == slow.numeric.tolist()


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ([[1.0, "x", 3.0]], "dose", "is not a number"),
        ([[1.0, True, 3.0]], "dose", "is not a number"),
        ([[1.0, None, 3.0]], "dose", "is null"),
        ([[1.0, 2**1100, 3.0]], "dose", "beyond float64 range"),
        ([[1.0, float("inf"), 3.0]], "dose", "is not a finite number"),
        ([[1.0, 2.0]], "dataframe_split.data", "rows of 3 values"),
        ([], "body", "0 rows"),
    ],
)
def test_a_numeric_split_the_matrix_path_declines_is_refused_naming_the_column(
    numeric_model: TrainedModel, data: list[list[Any]], field: str, words: str
) -> None:
    body = _split_body(["age", "dose", "weight"], data)
    assert invocations.numeric_split(body, numeric_model) is None
    with pytest.raises(invocations.BodyError, match=words) as refused:
        invocations.json_block(body, numeric_model, max_rows=10)
    assert refused.value.field == field


def test_the_matrix_path_still_refuses_too_many_rows_a_missing_column_and_a_repeated_one(
    numeric_model: TrainedModel,
) -> None:
    with pytest.raises(invocations.BodyError, match="3 rows; a request holds 1 to 2"):
        invocations.json_block(_split_body(["age", "dose", "weight"], [[1, 2, 3]] * 3), numeric_model, max_rows=2)
    with pytest.raises(invocations.BodyError, match="'weight' is missing") as missing:
        invocations.json_block(_split_body(["age", "dose"], [[1, 2]]), numeric_model, max_rows=2)
    assert missing.value.field == "weight"
    with pytest.raises(invocations.BodyError, match="more than once"):
        invocations.json_block(_split_body(["age", "dose", "age"], [[1, 2, 3]]), numeric_model, max_rows=2)


def test_a_model_with_categories_never_takes_the_matrix_path(fitted: tuple[TrainedModel, str, pd.DataFrame]) -> None:
    model, _, rows = fitted
    assert invocations.numeric_split(bodies(rows)["dataframe_split"], model) is None


def test_saved_model_is_the_sklearn_flavour_with_skops(fitted: tuple[TrainedModel, str, pd.DataFrame]) -> None:
    flavour = mlflow.models.Model.load(str(Path(fitted[1]) / "MLmodel")).flavors["sklearn"]
    assert flavour["serialization_format"] == "skops"


class StubScorer:
    """The service as invocations.py sees it, answering with `answer_with` (an Answer, or an exception to raise)."""

    def __init__(self, model: TrainedModel, answer_with: Any) -> None:
        self.model, self.answer_with, self.max_rows = model, answer_with, 10

    async def answer(self, rows: Any, client_request_id: str | None) -> Answer:
        if isinstance(self.answer_with, Exception):
            raise self.answer_with
        return self.answer_with


def _post(monkeypatch: pytest.MonkeyPatch, stub: StubScorer, rows: pd.DataFrame, content_type: str) -> Any:
    monkeypatch.setattr(invocations, "scorer", lambda: stub)
    body = json.dumps(bodies(rows)["dataframe_split"])
    return TestClient(invocations.app).post("/invocations", content=body, headers={"Content-Type": content_type})


def test_the_answer_is_mlflows_predictions(
    monkeypatch: pytest.MonkeyPatch, fitted: tuple[TrainedModel, str, pd.DataFrame]
) -> None:
    model, _, rows = fitted
    stub = StubScorer(model, Answer(np.zeros((len(rows), 2)), ["sick"] * len(rows), "r1"))
    reply = _post(monkeypatch, stub, rows, "application/json; charset=utf-8")
    assert (reply.status_code, reply.json()) == (200, {"predictions": ["sick"] * len(rows)})


@pytest.mark.parametrize(
    ("raised", "content_type", "status", "field"),
    [
        (Refused(Unscorable(2, "dose", 1e308), "1e+308 is outside what the model can score"), JSON_TYPE, 400, "dose"),
        (Overloaded("65536 rows already wait"), JSON_TYPE, 503, "body"),
        (None, "application/json; charset=latin-1", 415, "Content-Type"),
        (None, "application/xml", 415, "Content-Type"),
    ],
)
def test_refusals_become_mlflows_error_bodies(
    monkeypatch: pytest.MonkeyPatch,
    fitted: tuple[TrainedModel, str, pd.DataFrame],
    raised: Exception | None,
    content_type: str,
    status: int,
    field: str,
) -> None:
    model, _, rows = fitted
    reply = _post(monkeypatch, StubScorer(model, raised), rows, content_type)
    body = reply.json()
    assert (reply.status_code, body["field"], body["error_code"]) == (status, field, "BAD_REQUEST")
    assert body["message"] == body["error"]
