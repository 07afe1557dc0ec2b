"""mltemplate.canonical: the same model bytes on every run and every CPU, still an ordinary skops file."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mltemplate.canonical import SIGNIFICANT_BITS, dumps, round_significant
from mltemplate.estimators import TRUSTED_TYPES
from mltemplate.model import TrainedModel, loads
from mltemplate.params import ModelParams
from mltemplate.pipeline.train import train
from mltemplate.predict import to_frame
from mltemplate.schema import Schema
from tests.conftest import ROOT, run, trained_model

pytestmark = pytest.mark.template  # the same bytes on any CPU kernel and thread count

SCHEMA = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")


def fitted(frame: pd.DataFrame, estimator: str) -> TrainedModel:
    features = to_frame(frame, SCHEMA)
    pipeline = train(features, frame["outcome"], SCHEMA, ModelParams(estimator=estimator), seed=0)
    return trained_model(pipeline, SCHEMA)


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "hist_gradient_boosting"])
def test_retraining_gives_identical_bytes_that_skops_loads(mixed_frame: pd.DataFrame, estimator: str) -> None:
    first = dumps(fitted(mixed_frame, estimator).pipeline)
    second = dumps(fitted(mixed_frame, estimator).pipeline)
    assert first == second
    loaded = sio.loads(first, trusted=sorted(TRUSTED_TYPES))
    expected = fitted(mixed_frame, estimator).pipeline.predict_proba(to_frame(mixed_frame, SCHEMA))
    np.testing.assert_array_equal(loaded.predict_proba(to_frame(mixed_frame, SCHEMA)), expected)


def test_plain_skops_dump_is_not_byte_stable(mixed_frame: pd.DataFrame) -> None:
    # Guards the reason dumps exists: if skops becomes deterministic, the canonicalisation can go.
    assert sio.dumps(fitted(mixed_frame, "random_forest").pipeline) != sio.dumps(
        fitted(mixed_frame, "random_forest").pipeline
    )


def test_archive_has_fixed_timestamps_and_sequential_names(mixed_frame: pd.DataFrame) -> None:
    data = dumps(fitted(mixed_frame, "logistic_regression").pipeline)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        names = [info.filename for info in infos]
        assert names[0] == "schema.json"
        assert names[1:] == [f"{i}.npy" for i in range(len(names) - 1)]
        ids = sorted(set(_ids(json.loads(archive.read("schema.json")))))
        assert ids == list(range(1, len(ids) + 1))


def _ids(state: object) -> list[int]:
    if isinstance(state, dict):
        own = [state["__id__"]] if "__id__" in state else []
        return own + [i for value in state.values() for i in _ids(value)]
    if isinstance(state, list):
        return [i for item in state for i in _ids(item)]
    return []


def test_round_significant_keeps_the_given_bits_and_non_finite_values() -> None:
    values = np.array([1 + 2**-30, -(1 + 2**-30), 1 + 2**-23, 0.0, np.nan, np.inf, -np.inf])
    rounded = round_significant(values, bits=24)
    np.testing.assert_array_equal(rounded, [1.0, -1.0, 1 + 2**-23, 0.0, np.nan, np.inf, -np.inf])


def test_round_significant_rounds_half_up_and_carries_into_the_exponent() -> None:
    assert round_significant(np.array([1 + 2**-25]), bits=24)[0] == 1 + 2**-24
    assert round_significant(np.array([2 - 2**-30]), bits=24)[0] == 2.0


def test_round_significant_is_idempotent() -> None:
    values = np.random.default_rng(0).normal(size=100) * 10.0 ** np.arange(-50, 50)
    once = round_significant(values)
    np.testing.assert_array_equal(round_significant(once), once)
    np.testing.assert_allclose(once, values, rtol=2.0**-SIGNIFICANT_BITS, atol=0)


def test_trained_linear_model_is_canonical(mixed_frame: pd.DataFrame) -> None:
    coef = fitted(mixed_frame, "logistic_regression").pipeline.named_steps["estimator"].coef_
    np.testing.assert_array_equal(coef, round_significant(coef))


def test_dumps_leaves_the_given_model_unchanged(mixed_frame: pd.DataFrame) -> None:
    features = to_frame(mixed_frame, SCHEMA)
    pipeline = Pipeline([("estimator", LogisticRegression())]).fit(
        features[["age", "dose"]].fillna(0), mixed_frame["outcome"]
    )
    coef = pipeline.named_steps["estimator"].coef_.copy()
    assert not np.array_equal(coef, round_significant(coef))
    dumps(pipeline)
    np.testing.assert_array_equal(pipeline.named_steps["estimator"].coef_, coef)


def test_saved_gradient_boosting_does_not_record_the_cpu_count(mixed_frame: pd.DataFrame) -> None:
    pipeline = fitted(mixed_frame, "hist_gradient_boosting").pipeline
    loaded = loads(dumps(pipeline))
    assert loaded.named_steps["estimator"]._bin_mapper.n_threads is None
    features = to_frame(mixed_frame, SCHEMA)
    np.testing.assert_array_equal(loaded.predict_proba(features), pipeline.predict_proba(features))


FIT_AND_DUMP = """
import hashlib, json, sys
import pandas as pd
from mltemplate.canonical import dumps
from mltemplate.estimators import task_estimators
from mltemplate.params import ModelParams
from mltemplate.predict import to_frame
from mltemplate.schema import Schema
from mltemplate.pipeline.train import train
frame = pd.read_csv(sys.argv[1])
digests = {}
for task, described in json.loads(sys.argv[2]).items():
    schema = Schema(**{key: tuple(v) if isinstance(v, list) else v for key, v in described.items()})
    features, labels = to_frame(frame, schema), frame[schema.target]
    for name in task_estimators(task):
        pipeline = train(features, labels, schema, ModelParams(estimator=name), seed=0)
        digests[f"{task}/{name}"] = hashlib.md5(dumps(pipeline)).hexdigest()
print(json.dumps(digests))
"""

# Each changes the arithmetic of training: OpenBLAS's kernel for the CPU, the OpenMP thread count.
MACHINES = {
    "default": {},
    "haswell": {"OPENBLAS_CORETYPE": "Haswell"},
    "sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge"},
    "prescott": {"OPENBLAS_CORETYPE": "Prescott"},
    "one-thread": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
}


@pytest.mark.integration
def test_every_estimator_writes_the_same_model_bytes_on_every_cpu_kernel(
    mixed_frame: pd.DataFrame, tmp_path: Path
) -> None:
    csv = tmp_path / "data.csv"
    # A regression target too: its linear models hold a scalar intercept_, not an array.
    price = 1000 * mixed_frame["age"] + 300 * mixed_frame["dose"].fillna(5) + np.arange(len(mixed_frame)) % 7
    mixed_frame.assign(price=price).to_csv(csv, index=False)
    regression = Schema(("age", "dose"), ("site",), "price", positive_class=None, task="regression")
    schema = json.dumps({"binary": SCHEMA.to_dict(), "regression": regression.to_dict()})
    digests = {
        machine: json.loads(run([sys.executable, "-c", FIT_AND_DUMP, str(csv), schema], cwd=ROOT, **env).stdout)
        for machine, env in MACHINES.items()
    }
    differ = {m: sorted(k for k, v in found.items() if v != digests["default"][k]) for m, found in digests.items()}
    assert differ == {machine: [] for machine in MACHINES}, differ
