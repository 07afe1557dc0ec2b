"""Owns the model files: byte-stable skops save, safe load, hashes, and the one predict function
that both `evaluate` and the service call, so what is measured is what is served."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from mltemplate import atomic
from mltemplate.dvcfiles import locked_md5
from mltemplate.errors import Error
from mltemplate.model_metadata import MetadataError, ModelMetadata, read_model_metadata
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


# Fitted attributes computed through BLAS, whose last bits depend on the CPU's kernel (OpenBLAS picks
# Haswell, SkylakeX, Sandybridge... at start-up): logistic regression's coefficients differ by up to 5e-13
# (relative) between kernels. Add the attributes of any BLAS-fitted estimator you register in estimators.py.
BLAS_FITTED = frozenset({"coef_", "intercept_"})
# They are rounded to float32 precision (24 significant bits, ~7 digits) so every CPU writes the same bytes.
# A kernel difference of relative size r changes the rounded value only if a rounding boundary falls between
# the two results, with probability <= r * 2**24 per value (~1e-5 for r = 5e-13; README, "Reproducibility").
SIGNIFICANT_BITS = 24
# (class name, attribute) -> neutral value, for attributes that record the fitting machine rather than the
# model: HistGradientBoosting's bin mapper stores the number of CPU cores (None: use the serving machine's).
MACHINE_ATTRIBUTES: dict[tuple[str, str], Any] = {("_BinMapper", "n_threads"): None}


class ModelError(Error, RuntimeError):
    """A model file is missing, altered, or holds types that are not trusted."""


def round_significant(values: np.ndarray, bits: int = SIGNIFICANT_BITS) -> np.ndarray:
    """float64 values rounded (half away from zero) to `bits` significant bits; NaN and infinities kept."""
    if not 1 <= bits <= 52:
        raise ValueError(f"bits must be 1..52 (float64 keeps 52 after the leading one), got {bits}")
    values = np.asarray(values, dtype=np.float64)
    drop = np.uint64(52 - bits)
    # Integer arithmetic on the IEEE 754 bits: exact, identical on every CPU; a carry into the exponent is the
    # correct rounding up to the next power of two.
    half = np.uint64((1 << (52 - bits)) >> 1)
    rounded = ((values.view(np.uint64) + half) >> drop << drop).view(np.float64)
    return np.where(np.isfinite(values), rounded, values)


def _estimators(obj: Any, seen: set[int]) -> Iterator[BaseEstimator]:
    # Every estimator inside a fitted one: Pipeline steps, ColumnTransformer parts, ensembles' members,
    # private helpers such as HistGradientBoosting's bin mapper.
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, BaseEstimator):
        yield obj
        children: Any = vars(obj).values()
    elif isinstance(obj, list | tuple):
        children = obj
    elif isinstance(obj, dict):
        children = obj.values()
    else:
        return
    for child in children:
        yield from _estimators(child, seen)


def _canonical_values(model: Pipeline) -> list[tuple[dict[str, Any], str, Any]]:
    # (attribute dict, name, canonical value) for every attribute that differs from its canonical value.
    changes: list[tuple[dict[str, Any], str, Any]] = []
    for estimator in _estimators(model, set()):
        state = vars(estimator)
        for name in sorted(BLAS_FITTED & state.keys()):
            value = state[name]
            if isinstance(value, np.ndarray) and value.dtype == np.float64:
                changes.append((state, name, round_significant(value)))
        for (owner, name), neutral in MACHINE_ATTRIBUTES.items():
            if type(estimator).__name__ == owner and name in state:
                changes.append((state, name, neutral))
    return changes


def canonicalise(model: Pipeline) -> Pipeline:
    """Make a fitted model, in place, the one any CPU would have produced: BLAS-fitted arrays rounded to
    SIGNIFICANT_BITS, machine-specific attributes reset. Idempotent; returns the model."""
    # In place on purpose: copy.deepcopy of a tree leaves garbage in the padding bytes of its node array.
    for state, name, value in _canonical_values(model):
        state[name] = value
    return model


@contextmanager
def _canonical(model: Pipeline) -> Iterator[Pipeline]:
    # The model canonicalised for the duration of the block, then restored: dumps() leaves its argument alone.
    changes = _canonical_values(model)
    saved = [(state, name, state[name]) for state, name, _ in changes]
    try:
        for state, name, value in changes:
            state[name] = value
        yield model
    finally:
        for state, name, value in saved:
            state[name] = value


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
    """A skops archive of the canonical model (`canonicalise`): byte for byte the same on any CPU."""
    with _canonical(model):
        archive = sio.dumps(model)
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
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


# Tree ensembles (random forest) cast their input to float32: a larger preprocessed value becomes inf and raises.
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Unscorable:
    """Where the model cannot score its input: the row, and the feature when one value is to blame."""

    row: int
    feature: str | None
    value: Any = None
    transformed: float | None = None

    def describe(self) -> str:
        if self.feature is None:
            return "the model cannot score this record (it raised or answered a non-finite probability)"
        return (
            f"{self.value!r} is outside what the model can score: preprocessing turns it into {self.transformed!r}, "
            f"which is not finite or beyond {FLOAT32_MAX:.4g} (the float32 range tree models use)"
        )


def _sources(preprocess: Any, width: int) -> list[str | None]:
    """The input feature behind each preprocessed column (None where it is not known)."""
    sources: list[str | None] = [None] * width
    if isinstance(preprocess, Pipeline) and len(preprocess) == 1:
        preprocess = preprocess[0]
    for name, transformer, columns in getattr(preprocess, "transformers_", []):
        if name == "remainder" or name not in getattr(preprocess, "output_indices_", {}):
            continue
        block = preprocess.output_indices_[name]
        columns = list(columns)
        if block.stop - block.start == len(columns):  # one column out per column in: impute, scale
            sources[block] = columns
            continue
        try:  # one-hot: "<feature>_<category>"; the longest feature name that prefixes it
            names = list(transformer.get_feature_names_out(columns))
        except (AttributeError, ValueError):
            continue
        for index, out in zip(range(block.start, block.stop), names, strict=False):
            owners = [c for c in columns if str(out).startswith(f"{c}_")]
            sources[index] = max(owners, key=len) if owners else None
    return sources


def _alone_fails(model: TrainedModel, frame: pd.DataFrame, row: int) -> bool:
    try:
        with np.errstate(all="ignore"):
            scored = model.pipeline.predict_proba if model.schema.classification else model.pipeline.predict
            return not np.isfinite(np.asarray(scored(frame.iloc[[row]]), dtype=np.float64)).all()
    except Exception:  # any error of the model on this row alone is the answer sought
        return True


def unscorable(model: TrainedModel, records: Records) -> Unscorable | None:
    """Why records that made the model raise (or answer non-finite probabilities) cannot be scored: the first
    row and feature whose preprocessed value is not finite or beyond float32; else the first row that fails on
    its own; None when every row scores on its own (the fault is not in the input)."""
    frame = to_frame(records, model.schema)
    try:
        # Overflow to inf is what is being looked for here, not something to warn about.
        with np.errstate(over="ignore", invalid="ignore"):  # thread-local, unlike warnings filters
            transformed = np.asarray(model.pipeline[:-1].transform(frame), dtype=np.float64)
    except Exception:  # a preprocessing error leaves the row-by-row search below
        transformed = None
    if transformed is not None and transformed.ndim == 2:
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(transformed) | (np.abs(transformed) > FLOAT32_MAX)
        sources = _sources(model.pipeline[:-1], transformed.shape[1])
        for row, column in zip(*np.nonzero(bad), strict=True):
            feature = sources[column]
            if feature is not None:
                value = frame.iloc[row][feature]
                return Unscorable(
                    int(row),
                    feature,
                    value.item() if hasattr(value, "item") else value,
                    float(transformed[row, column]),
                )
    for row in range(len(frame)):
        if _alone_fails(model, frame, row):
            return Unscorable(row, None)
    return None


def labels(model: TrainedModel, probabilities: np.ndarray) -> list[str]:
    """The most probable class of each row."""
    classes = model.classes
    return [classes[i] for i in np.argmax(probabilities, axis=1)]
