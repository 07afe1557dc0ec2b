"""Owns the model files: byte-stable skops save, safe load, hashes, and the one predict function
that both `evaluate` and the service call, so what is measured is what is served."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.pipeline import Pipeline

from mltemplate import atomic
from mltemplate.errors import Error
from mltemplate.lock import locked_md5
from mltemplate.metadata import MetadataError, ModelMetadata, read_model_metadata
from mltemplate.paths import DVC_LOCK, MODEL_FILE, MODEL_METADATA
from mltemplate.schema import Schema

# Types outside skops' default trust list that the template's estimators need. Anything else found in a
# model file is refused at load time instead of being executed.
TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)

# The earliest date a zip entry can carry; a fixed date keeps the archive byte-stable.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ModelError(Error, RuntimeError):
    """A model file is missing, altered, or holds types that are not trusted."""


def _canonical_state(state: Any, ids: dict[int, int], files: dict[str, str]) -> Any:
    # skops names objects by id() and uuid4, which change on every run; number them by first appearance.
    if isinstance(state, dict):
        out: dict[str, Any] = {}
        for key, value in state.items():
            if key == "__id__" and isinstance(value, int):
                out[key] = ids.setdefault(value, len(ids) + 1)  # 0 would read as "no id" in skops
            elif key == "file" and isinstance(value, str):
                suffix = Path(value).suffix
                out[key] = files.setdefault(value, f"{len(files)}{suffix}")
            else:
                out[key] = _canonical_state(value, ids, files)
        return out
    if isinstance(state, list):
        return [_canonical_state(item, ids, files) for item in state]
    return state


def dumps(model: Pipeline) -> bytes:
    """A skops archive that is identical, byte for byte, for identical models."""
    with zipfile.ZipFile(io.BytesIO(sio.dumps(model))) as source:
        files: dict[str, str] = {}
        schema = _canonical_state(json.loads(source.read("schema.json")), {}, files)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as target:

            def put(name: str, data: bytes) -> None:
                info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                target.writestr(info, data)

            put("schema.json", json.dumps(schema, indent=2, sort_keys=False).encode())
            for old, new in sorted(files.items(), key=lambda item: int(Path(item[1]).stem)):
                put(new, source.read(old))
    return out.getvalue()


def loads(data: bytes) -> Pipeline:
    """Load a skops archive, refusing any type outside skops' defaults and TRUSTED_TYPES."""
    untrusted = set(sio.get_untrusted_types(data=data)) - TRUSTED_TYPES
    if untrusted:
        raise ModelError(f"model file holds untrusted types {sorted(untrusted)}; refusing to load it")
    model = sio.loads(data, trusted=sorted(TRUSTED_TYPES))
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


def check(*, model_path: Path = MODEL_FILE, metadata_path: Path = MODEL_METADATA, lock: Path | None = DVC_LOCK) -> str:
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
    """Check the file as `check` does (against dvc.lock too when `lock` is given), then load it: nothing is
    deserialised before the hashes agree, and loading refuses untrusted types. ModelError says what to do."""
    metadata = _described(model_path, metadata_path)
    data = model_path.read_bytes()
    actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
    _require_described(actual, metadata, model_path, metadata_path)
    if lock is not None:
        _require_locked(actual, model_path, lock)
    return TrainedModel(pipeline=loads(data), metadata=metadata)


Records = list[dict[str, Any]] | list[tuple[Any, ...]] | pd.DataFrame
"""Rows as mappings by feature name, as tuples of values in `schema.features` order, or a DataFrame."""


def to_frame(records: Records, schema: Schema) -> pd.DataFrame:
    """Records as the frame the pipeline was fitted on: schema column order and dtypes."""
    features = list(schema.features)
    if isinstance(records, pd.DataFrame):
        frame = records
    else:
        rows = [[r.get(c, np.nan) for c in features] if isinstance(r, Mapping) else r for r in records]
        if not schema.categorical:
            # All-numeric fast path (the service's): one float64 block instead of a per-column astype, ~50x
            # faster for one record; same values, columns and dtypes as the general path below.
            matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(features))
            return pd.DataFrame(matrix, columns=features)
        frame = pd.DataFrame.from_records(rows, columns=features)
    frame = frame.reindex(columns=features)
    for column in schema.numeric:
        frame[column] = frame[column].astype("float64")
    for column in schema.categorical:
        # Object dtype with NaN for missing: scikit-learn's imputers reject pandas' NA scalar.
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), np.nan)
    return frame


def predict_proba(model: TrainedModel, records: Records) -> np.ndarray:
    """Class probabilities, columns in `model.classes` order."""
    return np.asarray(model.pipeline.predict_proba(to_frame(records, model.schema)))


def predict_values(model: TrainedModel, records: Records) -> np.ndarray:
    """A regression model's predicted numbers, one per record (float64)."""
    return np.asarray(model.pipeline.predict(to_frame(records, model.schema)), dtype=np.float64).reshape(-1)


def predict(model: TrainedModel, records: Records) -> np.ndarray:
    """What the task's model answers, one row per record: class probabilities (rows x classes) for
    classification, the predicted number (a 1-d array) for regression."""
    return predict_proba(model, records) if model.schema.classification else predict_values(model, records)


def labels(model: TrainedModel, probabilities: np.ndarray) -> list[str]:
    """The most probable class of each row."""
    classes = model.classes
    return [classes[i] for i in np.argmax(probabilities, axis=1)]
