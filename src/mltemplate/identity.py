"""A model's release identity: the release that serves it (models/release.json, written by `make bento`), the version
a commit gets, and the model key, which names what made the model. Every Release is built here."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mltemplate import git
from mltemplate.errors import CommandError, Error
from mltemplate.model_metadata import ModelMetadata
from mltemplate.params import Params
from mltemplate.paths import RELEASE_FILE


class ReleaseError(Error, ValueError):
    """models/release.json does not hold what the code expects."""


class Release(BaseModel):
    """models/release.json: which release a build serves, where it came from, when it was trained and built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    git_commit: str
    model_md5: str
    data_md5: str
    mlflow_run_id: str | None
    trained_at: str
    built_at: str
    model_key: str | None = None
    """What made the model (`model_key`). A release is keyed by it: an image with a key already published is not
    published again."""
    registry_version: str | None = None
    """The MLflow registered model version of this model file, when a tracking server knew it at build time."""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def read_release(path: Path = RELEASE_FILE) -> Release | None:
    """The release written by `make bento` / `make serve`, or None when there is none."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise ReleaseError(f"{path}: not valid JSON ({error}) (run `make bento` to rewrite it)") from None
    try:
        return Release.model_validate(raw)
    except ValidationError as error:
        raise ReleaseError(f"{path}: {error.errors()[0]['msg']} (run `make bento` to rewrite it)") from None


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


def model_key(model_md5: str, data_md5: str, params: Params) -> str:
    """16 hex digits naming what made the model: the model file's md5 with the data and the params sections that
    build it (`Params.identity`). A push that changes none of them (docs, CI, code the model does not depend on,
    a threshold of the gate or the monitor) gets the same key."""
    made_of = json.dumps({"model_md5": model_md5, "data_md5": data_md5, "params": params.identity()}, sort_keys=True)
    return hashlib.sha256(made_of.encode()).hexdigest()[:16]


def new_release(
    model: ModelMetadata,
    *,
    repo: Path | None = None,
    params: Params | None = None,
    mlflow_run_id: str | None = None,
    trained_at: str | None = None,
    registry_version: str | None = None,
) -> Release:
    """The release of `model` at HEAD of `repo`, built now: versioned by HEAD (`unversioned-<md5>` outside git),
    trained at `trained_at` (its MLflow run's start) or else at the commit's time, keyed when the `params` that
    made it are given."""
    found = git.head(repo)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return Release(
        version=release_version(*found) if found else f"unversioned-{model.model_md5[:7]}",
        git_commit=git.commit(repo),
        model_md5=model.model_md5,
        data_md5=model.data.md5,
        mlflow_run_id=mlflow_run_id,
        trained_at=trained_at or (found[1].isoformat(timespec="seconds") if found else now),
        built_at=now,
        model_key=model_key(model.model_md5, model.data.md5, params) if params is not None else None,
        registry_version=registry_version,
    )


def current_release(model: ModelMetadata, *, path: Path = RELEASE_FILE, repo: Path | None = None) -> Release:
    """The release that serves `model`: models/release.json when it describes this model file at HEAD (in a Bento,
    where there is no git, the file alone decides); else one described from git alone, with no MLflow run."""
    written = read_release(path)
    found = git.head(repo)
    same_model = written is not None and written.model_md5 == model.model_md5
    if written is not None and same_model and (found is None or written.version == release_version(*found)):
        return written
    return new_release(model, repo=repo)
