"""MLflow's scoring protocol (`mlflow models serve`), on the service's model: POST /invocations with a JSON body of
`dataframe_split`, `dataframe_records`, `instances` or `inputs`, or a CSV (text/csv), answered {"predictions": [...]}
as MLflow answers for the model the train stage logs (the label, or the value, per row); GET /ping and /health.
Bodies decode into columns, go through `answer` (the checks, batcher and prediction log POST /predict uses), and
columns MLflow would ignore (not in the signature) are ignored here too."""

from __future__ import annotations

import io
from collections.abc import Mapping
from itertools import chain
from typing import Any

import numpy as np
import orjson
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mltemplate import columns
from mltemplate.model import TrainedModel
from mltemplate.serving.batching import Overloaded
from mltemplate.serving.scorer import Refused, client_request_id, json_response, scorer

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CSV = "text/csv"
JSON = "application/json"


class BodyError(ValueError):
    """A body this protocol or the model refuses; `field` names the input (a column) or the part of the body."""

    def __init__(self, message: str, field: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def _error(message: str, field: str, status: int = 400) -> Response:
    # MLflow's clients read error_code and message; this service's read error and field.
    body = {"error_code": "BAD_REQUEST", "message": message, "error": message, "field": field}
    return json_response(body, status)


def _records(rows: Any, key: str) -> dict[str, list[Any]]:
    """Row objects as columns; a feature a row lacks is null there (as pandas reads it)."""
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise BodyError(f"{key} must be a list of objects, one per row", key)
    names = dict.fromkeys(name for row in rows for name in row)
    return {name: [row.get(name) for row in rows] for name in names}


def _split(split: Any) -> dict[str, Any]:
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        raise BodyError("dataframe_split must be an object with columns and data", "dataframe_split")
    names, data = split["columns"], split.get("data")
    if not isinstance(data, list) or not all(isinstance(row, list) and len(row) == len(names) for row in data):
        raise BodyError(f"dataframe_split.data must be a list of rows of {len(names)} values", "dataframe_split.data")
    if len(set(map(str, names))) != len(names):
        raise BodyError(f"dataframe_split.columns names a column more than once: {names}", "dataframe_split.columns")
    values = list(zip(*data, strict=True)) if data else [() for _ in names]
    return {str(name): list(column) for name, column in zip(names, values, strict=True)}


def _columnar(data: Any, key: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise BodyError(f"{key} must be an object of columns (name: list of values) or a list of rows", key)
    return dict(data)


def from_json(body: Any, model: TrainedModel) -> dict[str, Any]:
    """The columns of a JSON body, parsed as MLflow's scoring server parses it for a model with a column signature."""
    if not isinstance(body, dict):
        raise BodyError(f"the body must be a JSON object with one of {list(FORMATS)}", "body")
    given = [key for key in FORMATS if key in body]
    if len(given) != 1:
        raise BodyError(f"the body must hold exactly one of {list(FORMATS)}, it holds {given or list(body)}", "body")
    key = given[0]
    data = body[key]
    if key == "dataframe_split":
        return _split(data)
    if key == "dataframe_records" or isinstance(data, list):
        return _records(data, key)
    return _columnar(data, key)


def from_csv(body: bytes, model: TrainedModel) -> dict[str, Any]:
    """The columns of a CSV with a header row (pandas' reading, as MLflow's: empty cells are null)."""
    categorical = {name: object for name in model.schema.categorical}
    try:
        frame = pd.read_csv(io.BytesIO(body), dtype=categorical)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise BodyError(f"the body is not a CSV with a header row ({error})", "body") from None
    numeric = set(model.schema.numeric)
    return {str(name): columns.read_numbers(frame[name]) if name in numeric else frame[name] for name in frame}


def _media(content_type: str) -> str:
    media, *parameters = (part.strip() for part in content_type.split(";"))
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            message = f"Content-Type parameter {parameter!r} is not supported; only charset=utf-8"
            raise BodyError(message, "Content-Type", 415)  # as MLflow answers it
    return media.lower()


async def invocations(request: Request) -> Response:
    service = scorer()
    body = await request.body()
    try:
        media = _media(request.headers.get("content-type", ""))
        if media == CSV:
            block = checked_block(from_csv(body, service.model), service.model, max_rows=service.max_rows)
        elif media == JSON:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as error:
                raise BodyError(f"body is not valid JSON ({error})", "body") from None
            block = json_block(parsed, service.model, max_rows=service.max_rows)
        else:
            return _error(f"Content-Type {media!r} is not supported; send {JSON} or {CSV}", "Content-Type", 415)
        answer = await service.answer(block, client_request_id(request))
    except BodyError as error:
        return _error(str(error), error.field, error.status)
    except Refused as refused:
        field = refused.found.feature or "body"
        return _error(f"row {refused.found.row}: {refused}", field)
    except Overloaded as error:
        return _error(str(error), "body", 503)
    predictions = answer.labels if answer.labels is not None else answer.output
    return json_response({"predictions": predictions}, request_id=answer.request_id)


def numeric_split(body: Any, model: TrainedModel) -> columns.Block | None:
    """A `dataframe_split` body of an all-numeric model whose cells are all JSON numbers, as one float64 matrix in
    schema order: the columnar fast path V2's tensors take, with no list and no check per column (those cost about
    as much as the rest of a one-row request on a 30-feature model). None for any other body: from_json and
    checked_block read it column by column and name what is wrong."""
    schema = model.schema
    split = body.get("dataframe_split") if isinstance(body, dict) and len(body) == 1 else None
    if schema.categorical or not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        return None
    names, data = [str(name) for name in split["columns"]], split.get("data")
    position = {name: i for i, name in enumerate(names)}
    if len(position) != len(names) or any(name not in position for name in schema.numeric):
        return None
    if not isinstance(data, list) or not data or not all(type(row) is list and len(row) == len(names) for row in data):
        return None
    if not set(map(type, chain.from_iterable(data))) <= {float, int}:  # bool, text, null: named column by column
        return None
    try:
        matrix = np.array(data, dtype=np.float64)
    except OverflowError:  # an integer beyond float range
        return None
    if not np.isfinite(matrix).all():  # orjson parses no infinity, a caller's Python floats may hold one
        return None
    order = [position[name] for name in schema.numeric]
    if order != list(range(len(names))):
        matrix = np.ascontiguousarray(matrix[:, order])
    return columns.matrix_block(matrix, schema, nullable=model.metadata.nullable)


def json_block(body: Any, model: TrainedModel, *, max_rows: int) -> columns.Block:
    """The rows of a parsed JSON body, checked (BodyError naming the first problem)."""
    block = numeric_split(body, model)
    if block is None:
        return checked_block(from_json(body, model), model, max_rows=max_rows)
    return _sized(block, max_rows)


def _sized(block: columns.Block, max_rows: int) -> columns.Block:
    if not 1 <= len(block) <= max_rows:
        raise BodyError(f"{len(block)} rows; a request holds 1 to {max_rows}", "body")
    return block


def checked_block(data: Mapping[str, Any], model: TrainedModel, *, max_rows: int) -> columns.Block:
    """The columns as the rows `predict` takes, checked as POST /predict checks records; BodyError naming the first
    problem."""
    schema = model.schema
    try:
        block, problems = columns.check(data, schema, nullable=model.metadata.nullable, extra="ignore")
    except columns.ColumnsError as error:
        raise BodyError(error.problems[0].describe(), error.problems[0].feature) from None
    if problems:
        raise BodyError(problems[0].describe(), problems[0].feature)
    return _sized(block, max_rows)


async def ping(request: Request) -> Response:
    # As MLflow's: 200 once the model is loaded, which it is in any worker that answers.
    return Response("\n", media_type=JSON)


app = Starlette(
    routes=[
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
    ]
)
"""Mounted into the service at / (service.py)."""
