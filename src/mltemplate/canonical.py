"""The canonical bytes of a fitted model: BLAS-fitted arrays rounded, machine attributes reset, and a skops archive
with renumbered ids and file names and fixed timestamps, the same on any CPU; reads and writes no file."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from mltemplate.estimators import entry_of

# The earliest date a zip entry can carry; a fixed date keeps the archive byte-stable.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

# The registry's BLAS-fitted attributes (estimators.py) are rounded to float32 precision (24 significant bits,
# ~7 digits) so every CPU writes the same bytes. A kernel difference of relative size r changes the rounded value
# only if a rounding boundary falls between the two results, with probability <= r * 2**24 per value (~1e-5 for
# r = 5e-13; docs/pipeline.md, "Reproducibility").
SIGNIFICANT_BITS = 24


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
    # (attribute dict, name, canonical value) for every attribute its registry entry names, of each registered
    # estimator in the model (its BLAS-fitted arrays) and of its parts (machine attributes).
    changes: list[tuple[dict[str, Any], str, Any]] = []
    for estimator in _estimators(model, set()):
        entry = entry_of(estimator)
        if entry is None:
            continue
        state = vars(estimator)
        for name in sorted(entry.blas_fitted & state.keys()):
            value = state[name]
            if isinstance(value, np.ndarray) and value.dtype == np.float64:
                changes.append((state, name, round_significant(value)))
            elif isinstance(value, float):  # a single target's intercept_ is a scalar (np.float64 is a float)
                changes.append((state, name, type(value)(round_significant(np.asarray(value, dtype=np.float64)))))
        for name in sorted(entry.blas_spectra & state.keys()):
            value = state[name]
            if isinstance(value, np.ndarray) and value.dtype == np.float64 and value.size:
                noise = np.abs(value) < np.nanmax(np.abs(value)) * 2.0**-SIGNIFICANT_BITS
                changes.append((state, name, round_significant(np.where(noise, 0.0, value))))
        for part in _estimators(estimator, set()):
            for (owner, name), neutral in entry.machine_attributes.items():
                if type(part).__name__ == owner and name in vars(part):
                    changes.append((vars(part), name, neutral))
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
