"""The Open Inference Protocol (KServe V2, Triton) over HTTP/REST, on the service's model: health, server and model
metadata, and inference through `answer`, the checks, batcher and prediction log POST /predict uses. Tensors decode
straight into column arrays, no per-record objects: one tensor per feature (FP64, FP32, INT*, UINT* or BOOL for a
number, BYTES for a category) or, for an all-numeric model, one [rows, features] tensor in schema order."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mltemplate import columns
from mltemplate.model import TrainedModel
from mltemplate.serving.batching import Overloaded
from mltemplate.serving.scorer import Refused, Scorer, client_request_id, json_response, scorer

PLATFORM = "sklearn_skops"
"""`<project>_<format>`, as the protocol names platforms: a scikit-learn pipeline in a skops file."""
FLOATS = frozenset({"FP16", "FP32", "FP64"})
INTEGERS = {f"{sign}INT{bits}": (sign, bits) for sign in ("", "U") for bits in (8, 16, 32, 64)}
NUMBERS = FLOATS | set(INTEGERS) | {"BOOL"}
_NONE = type(None)


class TensorError(ValueError):
    """A request the protocol or the model refuses; the message names the input (or field) at fault."""


def _error(message: str, status: int = 400) -> Response:
    return json_response({"error": message}, status)


def outputs(model: TrainedModel) -> list[dict[str, Any]]:
    """The output tensors' metadata: the label (BYTES) then the class probabilities (FP64, columns in the model's
    class order), or the predicted value (FP64)."""
    if not model.schema.classification:
        return [{"name": "value", "datatype": "FP64", "shape": [-1]}]
    classes = len(model.classes)
    return [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, classes]},
    ]


def model_metadata(model: TrainedModel, version: str) -> dict[str, Any]:
    schema = model.schema
    inputs = [
        {"name": name, "datatype": "FP64" if name in schema.numeric else "BYTES", "shape": [-1]}
        for name in schema.features
    ]
    return {
        "name": model.metadata.name,
        "versions": [version],
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs(model),
    }


def _flat(data: Any, name: str) -> list[Any]:
    """Tensor data in row-major order: given flat, or nested as the tensor's dimensions."""
    if not isinstance(data, list):
        raise TensorError(f"input {name!r}: data must be a JSON array, got {type(data).__name__}")
    flat: list[Any] = data
    while flat and isinstance(flat[0], list):
        if not all(isinstance(item, list) for item in flat):
            raise TensorError(f"input {name!r}: data mixes arrays and values")
        flat = list(itertools.chain.from_iterable(flat))
    return flat


def _shape(tensor: Mapping[str, Any], name: str, count: int) -> list[int]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise TensorError(f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}")
    if math.prod(shape) != count:
        raise TensorError(f"input {name!r}: shape {shape} holds {math.prod(shape)} elements, data has {count}")
    return shape


def _numbers(values: list[Any], datatype: str, name: str, *, nullable: bool) -> np.ndarray:
    """float64 values of a numeric tensor, each element of its datatype's JSON type (null only if nullable)."""
    allowed: set[type] = {bool} if datatype == "BOOL" else {int} if datatype in INTEGERS else {int, float}
    if nullable:
        allowed.add(_NONE)
    if not set(map(type, values)) <= allowed:
        row, value = next((i, v) for i, v in enumerate(values) if type(v) not in allowed)
        kind = "true or false" if datatype == "BOOL" else "an integer" if datatype in INTEGERS else "a number"
        raise TensorError(f"input {name!r} ({datatype}): element {row} is {value!r}, not {kind}")
    try:
        array = np.array(values, dtype=np.float64)
    except OverflowError:
        raise TensorError(f"input {name!r} ({datatype}): an element is beyond float64 range") from None
    if datatype in INTEGERS:
        sign, bits = INTEGERS[datatype]
        info = np.iinfo(f"{sign.lower()}int{bits}")
        outside = (array < info.min) | (array > info.max)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise TensorError(f"input {name!r} ({datatype}): element {row} is {values[row]!r}, outside {datatype}")
    return array


def _rows(shape: list[int], name: str, *, width: int, max_rows: int) -> int:
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != width):
        want = f"[rows] or [rows, {width}]" if width == 1 else f"[rows, {width}]"
        raise TensorError(f"input {name!r}: shape {shape} is not {want}")
    if not 1 <= shape[0] <= max_rows:
        raise TensorError(f"input {name!r}: {shape[0]} rows; a request holds 1 to {max_rows}")
    return shape[0]


def decode(inputs: Any, model: TrainedModel, *, max_rows: int) -> columns.Block:
    """The request's input tensors as the rows `predict` takes, checked as POST /predict checks records."""
    schema, nullable = model.schema, set(model.metadata.nullable)
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, dict) for t in inputs):
        raise TensorError("inputs must be a non-empty list of tensors ({name, shape, datatype, data})")
    names = [t.get("name") for t in inputs]
    if len(inputs) == 1 and not schema.categorical and names[0] not in schema.features:
        return _matrix(inputs[0], model, max_rows=max_rows)
    if len(set(map(str, names))) != len(names):
        raise TensorError(f"inputs name a tensor more than once: {names}")
    data: dict[str, Any] = {}
    for tensor in inputs:
        name, datatype = str(tensor.get("name")), tensor.get("datatype")
        if name not in schema.features:
            raise TensorError(f"input {name!r} is not a feature of the model; it takes {list(schema.features)}")
        if "data" not in tensor:
            raise TensorError(f"input {name!r} has no data (the binary tensor extension is not supported)")
        values = _flat(tensor["data"], name)
        _rows(_shape(tensor, name, len(values)), name, width=1, max_rows=max_rows)
        if name in schema.numeric:
            if datatype not in NUMBERS:
                raise TensorError(f"input {name!r} is {datatype!r}; the model takes a number: FP64, INT64 or BOOL")
            data[name] = _numbers(values, datatype, name, nullable=name in nullable)
        elif datatype != "BYTES":
            raise TensorError(f"input {name!r} is {datatype!r}; the model takes a category: BYTES")
        else:
            data[name] = values
    missing = [name for name in schema.features if name not in data]
    if missing:
        raise TensorError(f"input {missing[0]!r} is missing: the model takes {list(schema.features)}")
    try:
        return columns.checked(data, schema, nullable=nullable)
    except columns.ColumnsError as error:
        raise TensorError(f"input {error.problems[0].describe()}") from None


def _matrix(tensor: Mapping[str, Any], model: TrainedModel, *, max_rows: int) -> columns.Block:
    schema, name, datatype = model.schema, str(tensor.get("name")), tensor.get("datatype")
    if datatype not in NUMBERS:
        raise TensorError(f"input {name!r} is {datatype!r}; a [rows, features] tensor holds numbers: FP64")
    if "data" not in tensor:
        raise TensorError(f"input {name!r} has no data (the binary tensor extension is not supported)")
    values = _flat(tensor["data"], name)
    shape = _shape(tensor, name, len(values))
    if len(shape) != 2:
        raise TensorError(
            f"input {name!r} is not a feature of the model: send one tensor per feature {list(schema.features)} "
            f"or one [rows, {len(schema.numeric)}] tensor"
        )
    rows = _rows(shape, name, width=len(schema.numeric), max_rows=max_rows)
    nullable = set(model.metadata.nullable)
    matrix = _numbers(values, datatype, name, nullable=bool(nullable)).reshape(rows, len(schema.numeric))
    try:
        return columns.matrix_block(matrix, schema, nullable=nullable)
    except columns.ColumnsError as error:
        raise TensorError(f"input {name!r}: feature {error.problems[0].describe()}") from None


def _requested(body: Mapping[str, Any], model: TrainedModel) -> list[str]:
    known = [o["name"] for o in outputs(model)]
    wanted = body.get("outputs")
    if wanted is None:
        return known
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise TensorError("outputs must be a list of {name, parameters}")
    names = [str(o.get("name")) for o in wanted]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise TensorError(f"output {unknown[0]!r} is not an output of the model; it answers {known}")
    return names


def _tensors(output: np.ndarray, labels: list[str] | None, names: list[str]) -> list[dict[str, Any]]:
    rows = len(output)
    made: dict[str, Callable[[], dict[str, Any]]] = {
        "label": lambda: {"name": "label", "datatype": "BYTES", "shape": [rows], "data": labels},
        "probabilities": lambda: {
            "name": "probabilities",
            "datatype": "FP64",
            "shape": list(output.shape),
            "data": np.ascontiguousarray(output).reshape(-1),
        },
        "value": lambda: {"name": "value", "datatype": "FP64", "shape": [rows], "data": output.reshape(-1)},
    }
    return [made[name]() for name in names]


def _served(service: Scorer, request: Request) -> Response | None:
    """None when the path names the served model (and version); else the 404 that says what is served."""
    name, version = request.path_params["name"], request.path_params.get("version")
    served = service.model.metadata.name
    if name != served:
        return _error(f"unknown model {name!r}: this server serves {served!r}", 404)
    if version is not None and version != service.release.version:
        return _error(f"model {name!r} has no version {version!r}: it serves {service.release.version!r}", 404)
    return None


async def infer(request: Request) -> Response:
    service = scorer()
    if (unknown := _served(service, request)) is not None:
        return unknown
    if "inference-header-content-length" in request.headers:
        return _error("the binary tensor extension is not supported: send tensors as JSON (binary_data=False)")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        return _error(f"body is not valid JSON ({error})")
    try:
        if not isinstance(body, dict):
            raise TensorError(f"body must be a JSON object with inputs, got {type(body).__name__}")
        block = decode(body.get("inputs"), service.model, max_rows=service.max_rows)
        names = _requested(body, service.model)
        answer = await service.answer(block, client_request_id(request))
    except TensorError as error:
        return _error(str(error))
    except Refused as refused:
        found = refused.found
        where = f"input {found.feature!r}, row {found.row}" if found.feature else f"row {found.row}"
        return _error(f"{where}: {refused}")
    except Overloaded as error:
        return _error(str(error), 503)
    reply: dict[str, Any] = {"model_name": service.model.metadata.name, "model_version": service.release.version}
    if isinstance(body.get("id"), str):
        reply["id"] = body["id"]
    reply["outputs"] = _tensors(answer.output, answer.labels, names)
    return json_response(reply, request_id=answer.request_id)


async def server_metadata(request: Request) -> Response:
    return json_response({"name": "prediction-service", "version": scorer().release.version, "extensions": []})


async def live(request: Request) -> Response:
    return json_response({"live": True})


async def ready(request: Request) -> Response:
    # A worker answers only once its __init__ loaded the model.
    return json_response({"ready": True})


async def model(request: Request) -> Response:
    service = scorer()
    return _served(service, request) or json_response(model_metadata(service.model, service.release.version))


async def model_ready(request: Request) -> Response:
    service = scorer()
    return _served(service, request) or json_response({"name": service.model.metadata.name, "ready": True})


def _routes(suffix: str, endpoint: Any, methods: list[str]) -> list[Route]:
    return [
        Route(f"/v2/models/{{name}}{suffix}", endpoint, methods=methods),
        Route(f"/v2/models/{{name}}/versions/{{version}}{suffix}", endpoint, methods=methods),
    ]


app = Starlette(
    routes=[
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        *_routes("", model, ["GET"]),
        *_routes("/ready", model_ready, ["GET"]),
        *_routes("/infer", infer, ["POST"]),
    ]
)
"""Mounted into the service at / (service.py)."""
