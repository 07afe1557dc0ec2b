from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mltemplate import model
from mltemplate.params import ModelParams
from mltemplate.pipeline.train import train
from mltemplate.schema import Schema
from tests.conftest import ROOT, run, save_model, trained_model

SCHEMA = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")


def fitted(frame: pd.DataFrame, estimator: str) -> model.TrainedModel:
    features = model.to_frame(frame, SCHEMA)
    pipeline = train(features, frame["outcome"], SCHEMA, ModelParams(estimator=estimator), seed=0)
    return trained_model(pipeline, SCHEMA)


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
    save_model(trained, **paths)
    loaded = model.load(**paths)
    assert loaded.schema == SCHEMA
    assert loaded.metadata.model_md5 == model.md5(paths["model_path"])
    np.testing.assert_array_equal(model.predict_proba(loaded, mixed_frame), model.predict_proba(trained, mixed_frame))


def test_load_refuses_a_file_that_does_not_match_its_metadata(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    paths = {"model_path": tmp_path / "m.skops", "metadata_path": tmp_path / "m.json"}
    save_model(fitted(mixed_frame, "logistic_regression"), **paths)
    save_model(fitted(mixed_frame, "random_forest"), model_path=paths["model_path"], metadata_path=tmp_path / "x.json")
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
    save_model(fitted(mixed_frame, "logistic_regression"), model_path=tmp_path / "m", metadata_path=tmp_path / "j")
    metadata = json.loads((tmp_path / "j").read_text())
    assert metadata["schema"]["categorical"] == ["site"]
    assert metadata["classes"] == ["sick", "well"]


@pytest.fixture
def locked(mixed_frame: pd.DataFrame, tmp_path: Path) -> dict[str, Path]:
    """A saved model with a dvc.lock beside it that records the model file's md5."""
    paths = {"model_path": tmp_path / "models/model.skops", "metadata_path": tmp_path / "models/metadata.json"}
    digest = save_model(fitted(mixed_frame, "logistic_regression"), **paths).model_md5
    lock = {"schema": "2.0", "stages": {"train": {"outs": [{"path": "models/model.skops", "md5": digest}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    return {**paths, "lock": tmp_path / "dvc.lock"}


def test_load_accepts_the_file_dvc_lock_records(locked: dict[str, Path]) -> None:
    assert model.load(**locked).metadata.name == "demo"
    assert model.check(**locked) == model.md5(locked["model_path"])


def test_load_refuses_a_model_dvc_lock_does_not_record(locked: dict[str, Path]) -> None:
    lock = locked["lock"]
    lock.write_text(re.sub(r"md5: \w+", "md5: " + "f" * 32, lock.read_text()))
    with pytest.raises(model.ModelError, match=r"is not the model .*dvc.lock records \(md5 f{32}\): run `make run`"):
        model.load(**locked)


def test_load_without_dvc_lock_says_run_make_run(locked: dict[str, Path]) -> None:
    locked["lock"].unlink()
    with pytest.raises(model.ModelError, match=r"no .*dvc\.lock: run `make run` first"):
        model.check(**locked)


def test_dvc_lock_without_the_model_entry_is_refused(locked: dict[str, Path]) -> None:
    locked["lock"].write_text(yaml.safe_dump({"stages": {"train": {"outs": [{"path": "other", "md5": "x"}]}}}))
    with pytest.raises(model.ModelError, match=r"records no md5 for .*model\.skops"):
        model.check(**locked)


@pytest.fixture
def tiny_frame(mixed_frame: pd.DataFrame) -> pd.DataFrame:
    """mixed_frame with a column of small spread (like a ratio): huge values overflow once scaled."""
    rng = np.random.default_rng(1)
    return mixed_frame.assign(ratio=rng.normal(0.1, 0.01, len(mixed_frame)))


TINY = Schema(numeric=("age", "dose", "ratio"), categorical=("site",), target="outcome", positive_class="sick")


def _fitted_tiny(frame: pd.DataFrame, estimator: str) -> model.TrainedModel:
    pipeline = train(model.to_frame(frame, TINY), frame["outcome"], TINY, ModelParams(estimator=estimator), seed=0)
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
        model.predict_proba(trained, records)
    found = model.unscorable(trained, records)
    assert found is not None
    assert (found.row, found.feature, found.value) == (2, "ratio", value)
    assert repr(value) in found.describe()


@pytest.mark.parametrize("value", [1.7e308, -1.7e308, 1e39])
def test_hist_gradient_boosting_scores_extreme_values(tiny_frame: pd.DataFrame, value: float) -> None:
    trained = _fitted_tiny(tiny_frame, "hist_gradient_boosting")
    assert np.isfinite(model.predict_proba(trained, _records(tiny_frame, ratio=value))).all()


def test_nothing_is_unscorable_when_every_row_scores(tiny_frame: pd.DataFrame) -> None:
    trained = _fitted_tiny(tiny_frame, "logistic_regression")
    assert model.unscorable(trained, _records(tiny_frame)) is None


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
    found = model.unscorable(trained, records)
    assert found is not None
    assert (found.row, found.feature) == (2, None)


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
from mltemplate.pipeline.train import train
schema = Schema(**{key: tuple(v) if isinstance(v, list) else v for key, v in json.loads(sys.argv[2]).items()})
frame = pd.read_csv(sys.argv[1])
features, labels = model.to_frame(frame, schema), frame[schema.target]
digests = {}
for name in ESTIMATORS["binary"]:
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
