"""The request and response bodies of the prediction API: request models generated from the saved input schema
(and the example in examples/predict.json), the prediction response, and the /metadata document (with the held-out
metrics in metrics.json)."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, create_model
from typing_extensions import TypedDict

from mltemplate import dvcfiles
from mltemplate.identity import Release
from mltemplate.metrics import read_metrics
from mltemplate.model import TrainedModel
from mltemplate.model_metadata import ModelMetadata
from mltemplate.paths import DVC_LOCK, EXAMPLE_FILE, METRICS_FILE
from mltemplate.schema import Schema

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A JSON number (int or float), never a string, bool, null, NaN or Infinity; 1e400 overflows to inf and fails."""
Category = Annotated[str, Field(strict=True, max_length=1000)]
logger = logging.getLogger(__name__)


def _example(schema: Schema) -> dict[str, Any]:
    if EXAMPLE_FILE.exists():
        records = json.loads(EXAMPLE_FILE.read_text(encoding="utf-8")).get("records", [])
        if records and set(records[0]) == set(schema.features):
            return dict(records[0])
    return {**dict.fromkeys(schema.numeric, 0.0), **dict.fromkeys(schema.categorical, "")}


def _describe_field(name: str, schema: Schema, *, nullable: bool, known: Sequence[str] | None) -> str:
    kind = "A finite number" if name in schema.numeric else "A category (text)"
    parts = [f"{kind}."]
    if known is not None:
        shown = ", ".join(repr(value) for value in known[:20]) + (", ..." if len(known) > 20 else "")
        parts.append(f"Known values: {shown}; any other value is scored as none of them.")
    parts.append(
        "May be null (unknown): it had missing values in training and is imputed as there."
        if nullable
        else "Never null: it had no missing value in training."
    )
    return " ".join(parts)


def record_model(
    schema: Schema,
    *,
    nullable: Collection[str] = (),
    categories: Mapping[str, Sequence[str]] | None = None,
) -> type[BaseModel]:
    """One record: every feature required, numbers finite, categories text, nothing else allowed. A feature in
    `nullable` (missing in training, imputed by the pipeline) also accepts null. Fields keep the schema's order,
    which is the order the pipeline was fitted in."""
    example = _example(schema)
    categories = categories or {}
    fields: dict[str, Any] = {}
    for name in schema.features:
        kind: Any = FiniteFloat if name in schema.numeric else Category
        known = categories.get(name)
        extra: dict[str, Any] | None = {"x-known-values": list(known)} if known is not None else None
        description = _describe_field(name, schema, nullable=name in nullable, known=known)
        field = Field(examples=[example[name]], description=description, json_schema_extra=extra)
        fields[name] = (kind | None if name in nullable else kind, field)
    config = ConfigDict(extra="forbid", strict=True, title="Record")
    return create_model("Record", __config__=config, **fields)


SMALL_BODY_BYTES = 64 * 2**10
"""Bodies up to this size always take the fast parse: even their worst case costs only some MiB."""


class _Shape(BaseModel):
    """What a valid body can hold at most; set per schema by request_model."""

    max_brackets: ClassVar[int] = 1  # the records list; none nested in a record
    max_braces: ClassVar[int] = 1
    max_colons: ClassVar[int] = 1
    max_bytes: ClassVar[int] = SMALL_BODY_BYTES


class PredictRequestBase(_Shape):
    """Parses a body in one of two ways. Fast: pydantic straight from JSON bytes. But when that fails, pydantic
    turns the offending record into Python objects once per error (one per missing field): a 10 MiB body of
    nested lists then costs gigabytes. So a body whose shape no valid request has (a nested list, more objects
    or keys than max_rows allows, or more bytes than its records could fill) is parsed to Python first and then
    validated, which costs about twice the time but never copies it per error."""

    model_config = ConfigDict(extra="forbid", strict=True, title="PredictRequest")

    @classmethod
    def plausible(cls, data: bytes) -> bool:
        if len(data) <= SMALL_BODY_BYTES:
            return True
        if len(data) > cls.max_bytes:
            return False
        chars = np.frombuffer(data, dtype=np.uint8)  # numpy counts ~10x faster than bytes.count
        return bool(
            np.count_nonzero(chars == ord("[")) <= cls.max_brackets
            and np.count_nonzero(chars == ord("{")) <= cls.max_braces
            and np.count_nonzero(chars == ord(":")) <= cls.max_colons
        )

    @classmethod
    def model_validate_json(
        cls, json_data: str | bytes | bytearray, *, strict: bool | None = None, **options: Any
    ) -> Any:
        data = json_data.encode() if isinstance(json_data, str) else bytes(json_data)
        if cls.plausible(data):
            return super().model_validate_json(data, strict=strict, **options)
        try:
            parsed = pydantic_core.from_json(data)
        except ValueError:  # not JSON: the fast path fails at the same byte, with pydantic's own error
            return super().model_validate_json(data, strict=strict, **options)
        return cls.model_validate(parsed, strict=strict, **options)


def request_model(
    schema: Schema,
    *,
    max_rows: int,
    nullable: Collection[str] = (),
    categories: Mapping[str, Sequence[str]] | None = None,
) -> type[BaseModel]:
    """The body of POST /predict: {"records": [Record, ...]} with 1..max_rows records."""
    record = record_model(schema, nullable=nullable, categories=categories)
    records = Annotated[list[record], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]
    model = create_model("PredictRequest", __base__=PredictRequestBase, records=(records, ...))
    # Generous: any number as JSON writes it (<= 24 bytes), categories of 1000 \uXXXX-escaped characters,
    # quotes, separators and pretty-printing indentation around every name and value.
    per_record = sum(len(name.encode()) * 2 + 40 for name in schema.features) + 6000 * len(schema.categorical) + 16
    model.max_braces = max_rows + 1
    model.max_colons = max_rows * len(schema.features) + 1
    model.max_bytes = max_rows * per_record + 1024
    return model


class Prediction(TypedDict):
    """One record's answer. A TypedDict, not a model: pydantic serializes a thousand of them from plain dicts
    in Rust, where building as many model instances would cost milliseconds per request."""

    label: Annotated[str, Field(description="The most probable class.", examples=["benign"])]
    probabilities: Annotated[
        dict[str, float],
        Field(description="Probability of each class.", examples=[{"benign": 0.98, "malignant": 0.02}]),
    ]


class ValuePrediction(TypedDict):
    """One record's answer from a regression model."""

    value: Annotated[float, Field(description="The predicted value of the target.", examples=[42.0])]


def response_model(metadata: ModelMetadata) -> type[BaseModel]:
    """The body POST /predict answers for this model's task: a label and class probabilities per record (the
    example names the model's classes) for classification, a number per record for regression."""
    schema = metadata.input_schema
    request_id = (
        str,
        Field(
            description="The service's id of this answer in the prediction log (also the X-Request-ID header): "
            "what POST /feedback labels. A client's own X-Request-ID is logged beside it, never used as the key."
        ),
    )
    version = (str, Field(description="Release version of the model that answered (see /metadata)."))
    if not schema.classification:
        items = Field(description=f"The predicted `{schema.target}` of each record, in request order.")
        return create_model(
            "PredictResponse",
            request_id=request_id,
            model_version=version,
            predictions=(list[ValuePrediction], items),
        )
    classes = metadata.classes
    share = round(1 / max(len(classes), 1), 4)
    example = [{"label": classes[0], "probabilities": dict.fromkeys(classes, share)}] if classes else []
    items = Field(
        description=f"The most probable `{schema.target}` of each record and every class's probability "
        f"(classes: {', '.join(classes)}), in request order.",
        examples=[example],
    )
    return create_model(
        "PredictResponse", request_id=request_id, model_version=version, predictions=(list[Prediction], items)
    )


def predictions(
    trained: TrainedModel, output: np.ndarray, labels: Sequence[str] | None
) -> list[Prediction] | list[ValuePrediction]:
    """predict.predict's output as the response's predictions (the same numbers `evaluate` scored); `labels` are
    predict.labels of it (the service logs them too), None for regression."""
    if labels is None:
        return [ValuePrediction(value=value) for value in output.tolist()]
    classes = trained.classes
    return [
        Prediction(label=label, probabilities=dict(zip(classes, row, strict=True)))
        for label, row in zip(labels, output.tolist(), strict=True)
    ]


def held_out_metrics(path: Path = METRICS_FILE, *, lock: Path = DVC_LOCK) -> dict[str, Any] | None:
    """The served model's held-out metrics: metrics.json when it is the file dvc.lock records beside the model (the
    evaluate stage's output for it), else None, with a warning saying why."""
    if not path.is_file():
        return None
    recorded, actual = dvcfiles.locked_md5(path, lock=lock), dvcfiles.md5(path)
    if recorded != actual:
        logger.warning("%s (md5 %s) is not the file %s records (%s): no metrics served", path, actual, lock, recorded)
        return None
    return read_metrics(path)


def describe(trained: TrainedModel, found: Release, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """What GET /metadata answers, built once at start-up from what the model's own files record: which model, from
    which data, code and hyperparameters (models/metadata.json), which release (models/release.json), its held-out
    `metrics` (metrics.json), and what it expects. params.yaml is not read: it may have changed since."""
    schema = trained.schema
    made = trained.metadata
    return {
        "name": made.name,
        "version": found.version,
        "git_commit": found.git_commit,
        "model_md5": found.model_md5,
        "data_md5": found.data_md5,
        "mlflow_run_id": found.mlflow_run_id,
        "registry_version": found.registry_version,
        "model_key": found.model_key,
        "trained_at": found.trained_at,
        "built_at": found.built_at,
        "estimator": made.estimator,
        "hyperparameters": made.hyperparameters,
        "seed": made.seed,
        "data": made.data.model_dump(mode="json"),
        "libraries": made.libraries,
        "metrics": dict(metrics) if metrics is not None else None,
        "task": schema.task,
        "classes": trained.classes,
        "input_schema": {
            "features": [
                {
                    "name": name,
                    "type": "number" if name in schema.numeric else "string",
                    "nullable": name in made.nullable,
                    **({"categories": made.categories[name]} if name in schema.categorical else {}),
                }
                for name in schema.features
            ],
            "target": schema.target,
            "positive_class": schema.positive_class,
        },
    }
