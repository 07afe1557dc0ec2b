"""mltemplate.diagnosis: the record, feature and value a model cannot score, found after the model raised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltemplate.diagnosis import unscorable
from mltemplate.model import TrainedModel
from mltemplate.params import ModelParams
from mltemplate.pipeline.train import train
from mltemplate.predict import predict_proba, to_frame
from mltemplate.schema import Schema
from tests.conftest import trained_model


@pytest.fixture
def tiny_frame(mixed_frame: pd.DataFrame) -> pd.DataFrame:
    """mixed_frame with a column of small spread (like a ratio): huge values overflow once scaled."""
    rng = np.random.default_rng(1)
    return mixed_frame.assign(ratio=rng.normal(0.1, 0.01, len(mixed_frame)))


TINY = Schema(numeric=("age", "dose", "ratio"), categorical=("site",), target="outcome", positive_class="sick")


def _fitted_tiny(frame: pd.DataFrame, estimator: str) -> TrainedModel:
    pipeline = train(to_frame(frame, TINY), frame["outcome"], TINY, ModelParams(estimator=estimator), seed=0)
    return trained_model(pipeline, TINY)


def _records(frame: pd.DataFrame, **changed: float) -> list[dict[str, object]]:
    good = frame[list(TINY.features)].head(3).to_dict("records")
    return [*good[:2], {**good[2], **changed}]


@pytest.mark.parametrize(
    ("estimator", "value"),
    [
        ("logistic_regression", 1.7e308),  # scaled by 1/0.01: inf, which LogisticRegression refuses
        ("logistic_regression", -1.7e308),
        ("random_forest", 1e300),  # scaled: finite in float64, inf in the float32 that trees cast to
        ("random_forest", -1e39),
    ],
)
def test_values_the_estimator_cannot_score_are_found_with_their_feature(
    tiny_frame: pd.DataFrame, estimator: str, value: float
) -> None:
    trained = _fitted_tiny(tiny_frame, estimator)
    records = _records(tiny_frame, ratio=value)
    with pytest.raises(ValueError, match="infinity"):
        predict_proba(trained, records)
    found = unscorable(trained, records)
    assert found is not None
    assert (found.row, found.feature, found.value) == (2, "ratio", value)
    assert repr(value) in found.describe()


@pytest.mark.parametrize("value", [1.7e308, -1.7e308, 1e39])
def test_hist_gradient_boosting_scores_extreme_values(tiny_frame: pd.DataFrame, value: float) -> None:
    trained = _fitted_tiny(tiny_frame, "hist_gradient_boosting")
    assert np.isfinite(predict_proba(trained, _records(tiny_frame, ratio=value))).all()


def test_nothing_is_unscorable_when_every_row_scores(tiny_frame: pd.DataFrame) -> None:
    trained = _fitted_tiny(tiny_frame, "logistic_regression")
    assert unscorable(trained, _records(tiny_frame)) is None


def test_a_row_that_fails_without_a_culprit_value_is_named_without_a_feature(
    tiny_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = _fitted_tiny(tiny_frame, "logistic_regression")
    records = _records(tiny_frame, age=-1.0)
    real = trained.pipeline.predict_proba

    def picky(frame: pd.DataFrame) -> np.ndarray:  # fails on a negative age, whose scaled value is ordinary
        if (frame["age"] < 0).any():
            raise ValueError("negative age")
        return np.asarray(real(frame))

    monkeypatch.setattr(trained.pipeline, "predict_proba", picky)
    found = unscorable(trained, records)
    assert found is not None
    assert (found.row, found.feature) == (2, None)
