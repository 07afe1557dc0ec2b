"""The typed reader of models/metadata.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltemplate.model_metadata import MetadataError, ModelMetadata, read_model_metadata
from mltemplate.schema import Schema
from tests.conftest import DESCRIPTION

SCHEMA = Schema(numeric=("age",), categorical=("site",), target="outcome", positive_class="sick")


def model_metadata(**changes: object) -> ModelMetadata:
    raw = {**DESCRIPTION, "schema": SCHEMA, "classes": ["sick", "well"], "model_md5": "m" * 32}
    return ModelMetadata.model_validate({**raw, **changes})


def test_metadata_round_trips_through_its_json(tmp_path: Path) -> None:
    path = tmp_path / "metadata.json"
    path.write_text(model_metadata().to_json())
    assert read_model_metadata(path) == model_metadata()
    assert json.loads(path.read_text())["schema"]["categorical"] == ["site"]


def test_metadata_without_a_model_says_run_make_run(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="run `make run` first"):
        read_model_metadata(tmp_path / "models" / "metadata.json")


def test_metadata_that_is_not_json_says_so(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        read_model_metadata(tmp_path / "m.json")


def test_metadata_with_an_unknown_field_names_it(tmp_path: Path) -> None:
    raw = json.loads(model_metadata().to_json())
    (tmp_path / "m.json").write_text(json.dumps({**raw, "colour": "red"}))
    with pytest.raises(MetadataError, match="colour"):
        read_model_metadata(tmp_path / "m.json")
