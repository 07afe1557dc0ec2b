"""Why records cannot be scored: the row, and the feature and value when one input value is to blame; reads and
writes no file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mltemplate.model import TrainedModel
from mltemplate.predict import Records, to_frame

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
    if isinstance(preprocess, Pipeline):  # [features.py's derived columns,] the preprocessing
        preprocess = preprocess[-1]
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
            if feature is not None and feature in frame.columns:  # a derived column is no input value to blame
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
