"""Typed readers of the documents that describe a model: models/metadata.json (what the model is and was made
from) and models/release.json (which release serves it)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mltemplate import git
from mltemplate.errors import CommandError, Error
from mltemplate.paths import MODEL_METADATA, RELEASE_FILE
from mltemplate.schema import Schema


class MetadataError(Error, ValueError):
    """A metadata, release or metrics file is missing or does not hold what the code expects."""


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DataInfo(_Document):
    path: str = Field(description="The raw CSV, relative to the repository root.")
    md5: str = Field(description="Its md5, as data.dvc records it.")
    train_rows: int = Field(ge=0)


class ModelMetadata(_Document):
    """models/metadata.json, written by the train stage beside the model file."""

    name: str
    estimator: str
    hyperparameters: dict[str, Any]
    seed: int
    data: DataInfo
    libraries: dict[str, str]
    input_schema: Schema = Field(alias="schema")
    nullable: list[str] = Field(description="Features that had missing values in training: null is imputed.")
    categories: dict[str, list[str]] = Field(description="Known values of each categorical feature.")
    classes: list[str]
    model_md5: str

    def to_json(self) -> str:
        """The file's text: sorted keys, so an unchanged model gives unchanged bytes."""
        raw = self.model_dump(mode="json", by_alias=True)
        raw["schema"] = self.input_schema.to_dict()
        return json.dumps(raw, indent=2, sort_keys=True) + "\n"


def _read(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MetadataError(f"{path} not found: {what}") from None
    except ValueError as error:
        raise MetadataError(f"{path}: not valid JSON ({error})") from None


def read_model_metadata(path: Path = MODEL_METADATA) -> ModelMetadata:
    """The typed metadata.json; MetadataError names the first field that does not fit."""
    raw = _read(path, "run `make run` first to train a model")
    try:
        return ModelMetadata.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise MetadataError(f"{path}: {key}: {first['msg']} (run `make run` to rewrite it)") from None


class Release(_Document):
    """models/release.json: which release a build serves, where it came from, when it was trained and built."""

    version: str
    git_commit: str
    model_md5: str
    data_md5: str
    mlflow_run_id: str | None
    trained_at: str
    built_at: str
    model_key: str | None = None
    """What makes the model: its md5 with the data and params that made it (release/provenance.py). A release is
    keyed by it: an image with a key already published is not published again."""
    registry_version: str | None = None
    """The MLflow registered model version of this model file, when a tracking server knew it at build time."""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def read_release(path: Path = RELEASE_FILE) -> Release | None:
    """The release written by `make bento` / `make serve`, or None when there is none."""
    if not path.exists():
        return None
    try:
        return Release.model_validate(_read(path, "run `make bento`"))
    except ValidationError as error:
        raise MetadataError(f"{path}: {error.errors()[0]['msg']} (run `make bento` to rewrite it)") from None


def release_version(sha: str, when: dt.datetime) -> str:
    """`YYYY.MM.DD-HHMMSS-sha7` of a commit's time (UTC): unique, sortable, a valid Docker and git tag."""
    when = when.astimezone(dt.UTC)
    return f"{when:%Y.%m.%d}-{when:%H%M%S}-{sha[:7]}"


def head_version(repo: Path | None = None) -> str:
    """The release version of HEAD; CommandError outside a git work tree or before the first commit."""
    found = git.head(repo)
    if found is None:
        where = (repo or Path()).resolve()
        raise CommandError(f"{where}: no git commit to version from (commit first)")
    return release_version(*found)


def current_release(model: ModelMetadata, *, path: Path = RELEASE_FILE, repo: Path | None = None) -> Release:
    """The release that serves `model`: models/release.json when it describes this model file at HEAD (in a Bento,
    where there is no git, the file alone decides); else one described from git alone, with no MLflow run."""
    written = read_release(path)
    found = git.head(repo)
    same_model = written is not None and written.model_md5 == model.model_md5
    if written is not None and same_model and (found is None or written.version == release_version(*found)):
        return written
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return Release(
        version=release_version(*found) if found else f"unversioned-{model.model_md5[:7]}",
        git_commit=git.commit(repo),
        model_md5=model.model_md5,
        data_md5=model.data.md5,
        mlflow_run_id=None,
        trained_at=found[1].isoformat(timespec="seconds") if found else now,
        built_at=now,
    )
