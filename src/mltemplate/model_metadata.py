"""The typed reader of models/metadata.json: what a model is, what it was made from and what it accepts (written by
the train stage beside the model file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mltemplate.errors import Error
from mltemplate.paths import MODEL_METADATA
from mltemplate.schema import Schema


class MetadataError(Error, ValueError):
    """models/metadata.json is missing or does not hold what the code expects."""


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DataInfo(_Document):
    path: str = Field(description="The raw CSV, relative to the repository root.")
    md5: str = Field(description="Its md5, as data.dvc records it.")
    train_rows: int = Field(ge=0)


class ModelMetadata(_Document):
    """models/metadata.json, written by the train stage beside the model file."""

    name: str
    estimator: str
    hyperparameters: dict[str, Any]
    seed: int
    data: DataInfo
    libraries: dict[str, str]
    input_schema: Schema = Field(alias="schema")
    nullable: list[str] = Field(description="Features that had missing values in training: null is imputed.")
    categories: dict[str, list[str]] = Field(description="Known values of each categorical feature.")
    classes: list[str]
    model_md5: str

    def to_json(self) -> str:
        """The file's text: sorted keys, so an unchanged model gives unchanged bytes."""
        raw = self.model_dump(mode="json", by_alias=True)
        raw["schema"] = self.input_schema.to_dict()
        return json.dumps(raw, indent=2, sort_keys=True) + "\n"


def read_model_metadata(path: Path = MODEL_METADATA) -> ModelMetadata:
    """The typed metadata.json; MetadataError names the first field that does not fit."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MetadataError(f"{path} not found: run `make run` first to train a model") from None
    except ValueError as error:
        raise MetadataError(f"{path}: not valid JSON ({error})") from None
    try:
        return ModelMetadata.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise MetadataError(f"{path}: {key}: {first['msg']} (run `make run` to rewrite it)") from None
