"""The model files: save writes models/model.skops and models/metadata.json; load reads them back safely (trusted
types only) once their md5 agrees with the metadata and dvc.lock; verify checks that without loading."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.pipeline import Pipeline

from mltemplate import atomic, features
from mltemplate.canonical import dumps
from mltemplate.dvcfiles import locked_md5
from mltemplate.errors import Error
from mltemplate.estimators import TRUSTED_TYPES
from mltemplate.model_metadata import MetadataError, ModelMetadata, read_model_metadata
from mltemplate.paths import DVC_LOCK, MODEL_FILE, MODEL_METADATA
from mltemplate.schema import Schema


class ModelError(Error, RuntimeError):
    """A model file is missing, altered, or holds types that are not trusted."""


TRUSTED = TRUSTED_TYPES | features.TRUSTED_TYPES
"""The types outside skops' defaults a model file may hold: the estimator registry's and features.py's."""


def loads(data: bytes) -> Pipeline:
    """Load a skops archive, refusing any type outside skops' defaults and TRUSTED."""
    untrusted = set(sio.get_untrusted_types(data=data)) - TRUSTED
    if untrusted:
        raise ModelError(f"model file holds untrusted types {sorted(untrusted)}; refusing to load it")
    model = sio.loads(data, trusted=sorted(TRUSTED))
    if not isinstance(model, Pipeline):
        raise ModelError(f"model file holds a {type(model).__name__}, expected a scikit-learn Pipeline")
    return model


def md5(path: Path) -> str:
    """The same md5 DVC records for the file in dvc.lock and .dvc files."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class TrainedModel:
    """A fitted pipeline with the metadata written beside it (input schema, classes, provenance)."""

    pipeline: Pipeline
    metadata: ModelMetadata

    @property
    def schema(self) -> Schema:
        return self.metadata.input_schema

    @property
    def classes(self) -> list[str]:
        return self.metadata.classes


def save(
    pipeline: Pipeline,
    schema: Schema,
    description: Mapping[str, Any],
    *,
    model_path: Path = MODEL_FILE,
    metadata_path: Path = MODEL_METADATA,
) -> ModelMetadata:
    """Write the archive and its metadata: `description` (what train knows) plus the schema, the classes and the
    archive's md5. Returns the metadata as written."""
    data = dumps(pipeline)
    metadata = ModelMetadata.model_validate(
        {
            **description,
            "schema": schema,
            "classes": [str(c) for c in getattr(pipeline, "classes_", [])],  # a regressor has none
            "model_md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        }
    )
    atomic.write_bytes(model_path, data)
    atomic.write_text(metadata_path, metadata.to_json())
    return metadata


def _described(model_path: Path, metadata_path: Path) -> ModelMetadata:
    if not model_path.exists() or not metadata_path.exists():
        raise ModelError(f"no trained model at {model_path}: run `make run` first")
    try:
        return read_model_metadata(metadata_path)
    except MetadataError as error:
        raise ModelError(str(error)) from None


def _require_described(actual: str, metadata: ModelMetadata, model_path: Path, metadata_path: Path) -> None:
    if actual != metadata.model_md5:
        raise ModelError(
            f"{model_path} (md5 {actual}) is not the file {metadata_path} describes "
            f"(md5 {metadata.model_md5}): run `make run` to rebuild both"
        )


def _require_locked(actual: str, model_path: Path, lock: Path) -> None:
    if not lock.exists():
        raise ModelError(f"no {lock}: run `make run` first to train and record the model")
    locked = locked_md5(model_path, lock=lock)
    if locked is None:
        raise ModelError(f"{lock} records no md5 for {model_path}: run `make run`")
    if actual != locked:
        raise ModelError(
            f"{model_path} (md5 {actual}) is not the model {lock} records (md5 {locked}): "
            "run `make run` to rebuild it, or restore the file the pipeline produced"
        )


def verify(*, model_path: Path = MODEL_FILE, metadata_path: Path = MODEL_METADATA, lock: Path | None = DVC_LOCK) -> str:
    """Prove, without loading it, that the model file is the one the pipeline produced: its md5 must equal the md5
    in its metadata and (unless `lock` is None) the one dvc.lock records. Returns that md5."""
    metadata = _described(model_path, metadata_path)
    actual = md5(model_path)
    _require_described(actual, metadata, model_path, metadata_path)
    if lock is not None:
        _require_locked(actual, model_path, lock)
    return actual


def load(
    *, model_path: Path = MODEL_FILE, metadata_path: Path = MODEL_METADATA, lock: Path | None = None
) -> TrainedModel:
    """Verify the file as `verify` does (against dvc.lock too when `lock` is given), then load it: nothing is
    deserialised before the hashes agree, and loading refuses untrusted types. ModelError says what to do."""
    metadata = _described(model_path, metadata_path)
    data = model_path.read_bytes()
    actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
    _require_described(actual, metadata, model_path, metadata_path)
    if lock is not None:
        _require_locked(actual, model_path, lock)
    return TrainedModel(pipeline=loads(data), metadata=metadata)
