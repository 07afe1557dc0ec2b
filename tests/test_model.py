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

from mltemplate import model
from mltemplate.params import ModelParams
from mltemplate.schema import Schema
from mltemplate.train import train
from tests.conftest import ROOT, run

SCHEMA = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")


def fitted(frame: pd.DataFrame, estimator: str) -> model.TrainedModel:
    features = model.to_frame(frame, SCHEMA)
    pipeline = train(features, frame["outcome"], SCHEMA, ModelParams(estimator=estimator), seed=0)
    return model.TrainedModel(pipeline=pipeline, schema=SCHEMA, metadata={"name": "t"})


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "hist_gradient_boosting"])
def test_retraining_gives_identical_bytes_that_skops_loads(mixed_frame: pd.DataFrame, estimator: str) -> None:
    first = model.dumps(fitted(mixed_frame, estimator).pipeline)
    second = model.dumps(fitted(mixed_frame, estimator).pipeline)
    assert first == second
    loaded = sio.loads(first, trusted=sorted(model.TRUSTED_TYPES))
    expected = fitted(mixed_frame, estimator).pipeline.predict_proba(model.to_frame(mixed_frame, SCHEMA))
    np.testing.assert_array_equal(loaded.predict_proba(model.to_frame(mixed_frame, SCHEMA)), expected)


def test_plain_skops_dump_is_not_byte_stable(mixed_frame: pd.DataFrame) -> None:
    # Guards the reason model.dumps exists: if skops becomes deterministic, the canonicalisation can go.
    assert sio.dumps(fitted(mixed_frame, "random_forest").pipeline) != sio.dumps(
        fitted(mixed_frame, "random_forest").pipeline
    )


def test_archive_has_fixed_timestamps_and_sequential_names(mixed_frame: pd.DataFrame) -> None:
    data = model.dumps(fitted(mixed_frame, "logistic_regression").pipeline)
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


def test_save_then_load_round_trips(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    trained = fitted(mixed_frame, "hist_gradient_boosting")
    paths = {"model_path": tmp_path / "m.skops", "metadata_path": tmp_path / "m.json"}
    model.save(trained, **paths)
    loaded = model.load(**paths)
    assert loaded.schema == SCHEMA
    assert loaded.metadata["model_md5"] == model.md5(paths["model_path"])
    np.testing.assert_array_equal(model.predict_proba(loaded, mixed_frame), model.predict_proba(trained, mixed_frame))


def test_load_refuses_a_file_that_does_not_match_its_metadata(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    paths = {"model_path": tmp_path / "m.skops", "metadata_path": tmp_path / "m.json"}
    model.save(fitted(mixed_frame, "logistic_regression"), **paths)
    model.save(fitted(mixed_frame, "random_forest"), model_path=paths["model_path"], metadata_path=tmp_path / "x.json")
    with pytest.raises(model.ModelError, match=r"is not the file .* describes"):
        model.load(**paths)


def test_load_without_model_says_run_make_run(tmp_path: Path) -> None:
    with pytest.raises(model.ModelError, match=r"run `make run` first"):
        model.load(model_path=tmp_path / "m.skops", metadata_path=tmp_path / "m.json")


def test_untrusted_types_are_refused() -> None:
    data = sio.dumps({"f": pd.Timestamp})  # a type outside skops' defaults and ours
    with pytest.raises(model.ModelError, match="untrusted types"):
        model.loads(data)


def test_predict_accepts_records_in_any_key_order(mixed_frame: pd.DataFrame) -> None:
    trained = fitted(mixed_frame, "logistic_regression")
    records = [{"site": "north", "dose": 4.0, "age": 61.0}, {"age": 30.0, "site": None, "dose": None}]
    probabilities = model.predict_proba(trained, records)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert model.labels(trained, probabilities)[0] in {"sick", "well"}


def test_metadata_is_sorted_json_with_schema(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    model.save(fitted(mixed_frame, "logistic_regression"), model_path=tmp_path / "m", metadata_path=tmp_path / "j")
    metadata = json.loads((tmp_path / "j").read_text())
    assert metadata["schema"]["categorical"] == ["site"]
    assert metadata["classes"] == ["sick", "well"]


def test_round_significant_keeps_the_given_bits_and_non_finite_values() -> None:
    values = np.array([1 + 2**-30, -(1 + 2**-30), 1 + 2**-23, 0.0, np.nan, np.inf, -np.inf])
    rounded = model.round_significant(values, bits=24)
    np.testing.assert_array_equal(rounded, [1.0, -1.0, 1 + 2**-23, 0.0, np.nan, np.inf, -np.inf])


def test_round_significant_rounds_half_up_and_carries_into_the_exponent() -> None:
    assert model.round_significant(np.array([1 + 2**-25]), bits=24)[0] == 1 + 2**-24
    assert model.round_significant(np.array([2 - 2**-30]), bits=24)[0] == 2.0


def test_round_significant_is_idempotent() -> None:
    values = np.random.default_rng(0).normal(size=100) * 10.0 ** np.arange(-50, 50)
    once = model.round_significant(values)
    np.testing.assert_array_equal(model.round_significant(once), once)
    np.testing.assert_allclose(once, values, rtol=2.0**-model.SIGNIFICANT_BITS, atol=0)


def test_trained_linear_model_is_canonical(mixed_frame: pd.DataFrame) -> None:
    coef = fitted(mixed_frame, "logistic_regression").pipeline.named_steps["estimator"].coef_
    np.testing.assert_array_equal(coef, model.round_significant(coef))


def test_dumps_leaves_the_given_model_unchanged(mixed_frame: pd.DataFrame) -> None:
    features = model.to_frame(mixed_frame, SCHEMA)
    pipeline = Pipeline([("estimator", LogisticRegression())]).fit(
        features[["age", "dose"]].fillna(0), mixed_frame["outcome"]
    )
    coef = pipeline.named_steps["estimator"].coef_.copy()
    assert not np.array_equal(coef, model.round_significant(coef))
    model.dumps(pipeline)
    np.testing.assert_array_equal(pipeline.named_steps["estimator"].coef_, coef)


def test_saved_gradient_boosting_does_not_record_the_cpu_count(mixed_frame: pd.DataFrame) -> None:
    pipeline = fitted(mixed_frame, "hist_gradient_boosting").pipeline
    loaded = model.loads(model.dumps(pipeline))
    assert loaded.named_steps["estimator"]._bin_mapper.n_threads is None
    features = model.to_frame(mixed_frame, SCHEMA)
    np.testing.assert_array_equal(loaded.predict_proba(features), pipeline.predict_proba(features))


FIT_AND_DUMP = """
import hashlib, json, sys
import pandas as pd
from mltemplate import model
from mltemplate.estimators import ESTIMATORS
from mltemplate.params import ModelParams
from mltemplate.schema import Schema
from mltemplate.train import train
schema = Schema.from_dict(json.loads(sys.argv[2]))
frame = pd.read_csv(sys.argv[1])
features, labels = model.to_frame(frame, schema), frame[schema.target]
digests = {}
for name in ESTIMATORS:
    pipeline = train(features, labels, schema, ModelParams(estimator=name), seed=0)
    digests[name] = hashlib.md5(model.dumps(pipeline)).hexdigest()
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
    mixed_frame.to_csv(csv, index=False)
    schema = json.dumps(SCHEMA.to_dict())
    digests = {
        machine: json.loads(run([sys.executable, "-c", FIT_AND_DUMP, str(csv), schema], cwd=ROOT, **env).stdout)
        for machine, env in MACHINES.items()
    }
    assert all(found == digests["default"] for found in digests.values()), digests
