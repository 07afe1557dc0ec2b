"""The one predict function, which `evaluate`, the service and the monitor call: records (mappings, tuples or a
DataFrame) in, the model's answers out; reads and writes no file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mltemplate.model import TrainedModel
from mltemplate.schema import Schema

Records = list[dict[str, Any]] | list[tuple[Any, ...]] | pd.DataFrame
"""Rows as mappings by feature name, as tuples of values in `schema.features` order, or a DataFrame."""


def to_frame(records: Records, schema: Schema) -> pd.DataFrame:
    """Records as the frame the pipeline was fitted on: schema column order and dtypes."""
    features = list(schema.features)
    if isinstance(records, pd.DataFrame):
        frame = records
        if list(frame.columns) == features and _canonical(frame, schema):
            # Already the fitted frame (columns.check builds it so): a copy per column would cost more than
            # scoring 2,048 rows.
            return frame
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


def _canonical(frame: pd.DataFrame, schema: Schema) -> bool:
    """Whether the frame's numbers are float64 and its categories object with NaN (never None) for missing."""
    dtypes = frame.dtypes
    if any(dtypes[c] != np.float64 for c in schema.numeric):
        return False
    for column in schema.categorical:
        values = frame[column]
        if dtypes[column] != np.dtype(object) or any(v is None for v in values.to_numpy()):
            return False
    return True


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
