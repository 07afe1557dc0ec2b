"""mltemplate.model: the files save writes, and the refusals of load and verify."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import yaml

from mltemplate.model import ModelError, TrainedModel, load, loads, md5, verify
from mltemplate.params import ModelParams
from mltemplate.pipeline.train import train
from mltemplate.predict import predict_proba, to_frame
from mltemplate.schema import Schema
from tests.conftest import save_model, trained_model

SCHEMA = Schema(numeric=("age", "dose"), categorical=("site",), target="outcome", positive_class="sick")


def fitted(frame: pd.DataFrame, estimator: str) -> TrainedModel:
    features = to_frame(frame, SCHEMA)
    pipeline = train(features, frame["outcome"], SCHEMA, ModelParams(estimator=estimator), seed=0)
    return trained_model(pipeline, SCHEMA)


def test_save_then_load_round_trips(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    trained = fitted(mixed_frame, "hist_gradient_boosting")
    paths = {"model_path": tmp_path / "m.skops", "metadata_path": tmp_path / "m.json"}
    save_model(trained, **paths)
    loaded = load(**paths)
    assert loaded.schema == SCHEMA
    assert loaded.metadata.model_md5 == md5(paths["model_path"])
    np.testing.assert_array_equal(predict_proba(loaded, mixed_frame), predict_proba(trained, mixed_frame))


def test_load_refuses_a_file_that_does_not_match_its_metadata(mixed_frame: pd.DataFrame, tmp_path: Path) -> None:
    paths = {"model_path": tmp_path / "m.skops", "metadata_path": tmp_path / "m.json"}
    save_model(fitted(mixed_frame, "logistic_regression"), **paths)
    save_model(fitted(mixed_frame, "random_forest"), model_path=paths["model_path"], metadata_path=tmp_path / "x.json")
    with pytest.raises(ModelError, match=r"is not the file .* describes"):
        load(**paths)


def test_load_without_model_says_run_make_run(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"run `make run` first"):
        load(model_path=tmp_path / "m.skops", metadata_path=tmp_path / "m.json")


def test_untrusted_types_are_refused() -> None:
    data = sio.dumps({"f": pd.Timestamp})  # a type outside skops' defaults and ours
    with pytest.raises(ModelError, match="untrusted types"):
        loads(data)


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
    assert load(**locked).metadata.name == "demo"
    assert verify(**locked) == md5(locked["model_path"])


def test_load_refuses_a_model_dvc_lock_does_not_record(locked: dict[str, Path]) -> None:
    lock = locked["lock"]
    lock.write_text(re.sub(r"md5: \w+", "md5: " + "f" * 32, lock.read_text()))
    with pytest.raises(ModelError, match=r"is not the model .*dvc.lock records \(md5 f{32}\): run `make run`"):
        load(**locked)


def test_load_without_dvc_lock_says_run_make_run(locked: dict[str, Path]) -> None:
    locked["lock"].unlink()
    with pytest.raises(ModelError, match=r"no .*dvc\.lock: run `make run` first"):
        verify(**locked)


def test_dvc_lock_without_the_model_entry_is_refused(locked: dict[str, Path]) -> None:
    locked["lock"].write_text(yaml.safe_dump({"stages": {"train": {"outs": [{"path": "other", "md5": "x"}]}}}))
    with pytest.raises(ModelError, match=r"records no md5 for .*model\.skops"):
        verify(**locked)
