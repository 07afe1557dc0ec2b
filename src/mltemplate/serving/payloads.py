"""The request and response bodies of the prediction API: request models generated from the saved input schema
(reads models/metadata.json and examples/predict.json), the prediction response, and the /metadata document."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from typing_extensions import TypedDict

from mltemplate import model as model_files
from mltemplate.metadata import Release, read_metrics
from mltemplate.paths import EXAMPLE_FILE, METRICS_FILE, PARAMS_FILE
from mltemplate.schema import Schema

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A JSON number (int or float), never a string, bool, null, NaN or Infinity; 1e400 overflows to inf and fails."""
Category = Annotated[str, Field(strict=True, max_length=1000)]


def _example(schema: Schema) -> dict[str, Any]:
    if EXAMPLE_FILE.exists():
        records = json.loads(EXAMPLE_FILE.read_text(encoding="utf-8")).get("records", [])
        if records and set(records[0]) == set(schema.features):
            return dict(records[0])
    return {**dict.fromkeys(schema.numeric, 0.0), **dict.fromkeys(schema.categorical, "")}


def record_model(schema: Schema) -> type[BaseModel]:
    """One record: every feature required, numbers finite, categories text, nothing else allowed.
    Fields keep the schema's order, which is the order the pipeline was fitted in."""
    example = _example(schema)
    fields: dict[str, Any] = {}
    for name in schema.features:
        kind = FiniteFloat if name in schema.numeric else Category
        fields[name] = (kind, Field(examples=[example[name]]))
    config = ConfigDict(extra="forbid", strict=True, title="Record")
    return create_model("Record", __config__=config, **fields)


def request_model(schema: Schema, *, max_rows: int) -> type[BaseModel]:
    """The body of POST /predict: {"records": [Record, ...]} with 1..max_rows records."""
    record = record_model(schema)
    records = Annotated[list[record], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]
    config = ConfigDict(extra="forbid", strict=True, title="PredictRequest")
    return create_model("PredictRequest", __config__=config, records=(records, ...))


class Prediction(TypedDict):
    """One record's answer. A TypedDict, not a model: pydantic serializes a thousand of them from plain dicts
    in Rust, where building as many model instances would cost milliseconds per request."""

    label: Annotated[str, Field(description="The most probable class.", examples=["benign"])]
    probabilities: Annotated[
        dict[str, float],
        Field(description="Probability of each class.", examples=[{"benign": 0.98, "malignant": 0.02}]),
    ]


class PredictResponse(BaseModel):
    request_id: str = Field(description="Names this answer in the prediction log; send it back with POST /feedback.")
    model_version: str = Field(description="Release version of the model that answered (see /metadata).")
    predictions: list[Prediction]


def describe(trained: model_files.TrainedModel, found: Release) -> dict[str, Any]:
    """What GET /metadata answers: which model, from which data and code, and what it expects."""
    from mltemplate.params import load_params

    schema = trained.schema
    return {
        "name": trained.metadata.name,
        "version": found.version,
        "git_commit": found.git_commit,
        "model_md5": found.model_md5,
        "data_md5": found.data_md5,
        "mlflow_run_id": found.mlflow_run_id,
        "trained_at": found.trained_at,
        "built_at": found.built_at,
        "estimator": trained.metadata.estimator,
        "params": load_params(PARAMS_FILE).model_dump(mode="json"),
        "metrics": read_metrics() if METRICS_FILE.exists() else None,
        "classes": trained.classes,
        "input_schema": {
            "features": [
                {"name": name, "type": "number" if name in schema.numeric else "string"} for name in schema.features
            ],
            "target": schema.target,
            "positive_class": schema.positive_class,
        },
    }
