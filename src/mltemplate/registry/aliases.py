"""Registered model versions and their aliases: which version an alias (e.g. production) points to, and back."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from mltemplate.registry.runs import MODEL_MD5_TAG

PREVIOUS_TAG = "previous_version_of_alias."
"""Model-version tag recording which version an alias pointed to before, so `rollback` can restore it."""


def model_version(name: str, model_md5: str) -> str:
    """The newest registered version of `name` whose run logged the model file with this md5."""
    client = MlflowClient()
    for version in sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: -int(v.version)):
        if version.run_id and client.get_run(version.run_id).data.tags.get(MODEL_MD5_TAG) == model_md5:
            return str(version.version)
    raise LookupError(f"no version of registered model {name!r} was trained on model file {model_md5}")


def promote(name: str, version: str, alias: str) -> str | None:
    """Point `alias` at `version`; returns the version it pointed to before (None if it was unset)."""
    client = MlflowClient()
    try:
        previous: str | None = str(client.get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        previous = None
    if previous == version:
        return previous
    if previous is not None:
        client.set_model_version_tag(name, version, f"{PREVIOUS_TAG}{alias}", previous)
    client.set_registered_model_alias(name, alias, version)
    return previous


def rollback(name: str, alias: str) -> str:
    """Point `alias` back at the version it held before the last `promote`; returns that version."""
    client = MlflowClient()
    current = client.get_model_version_by_alias(name, alias)
    previous = current.tags.get(f"{PREVIOUS_TAG}{alias}")
    if previous is None:
        raise LookupError(f"{name}@{alias} is version {current.version}, which records no earlier version")
    client.set_registered_model_alias(name, alias, previous)
    return str(previous)


CHAMPION = "champion"
"""The alias a release points at the model it serves in production; `make rollback` moves it back."""
RELEASE_VERSION_TAG = "release_version"
IMAGE_DIGEST_TAG = "image_digest"


def _set_tags(client: MlflowClient, name: str, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def champion(uri: str, name: str, model_md5: str, *, release_version: str, image_digest: str, actor: str = "") -> str:
    """At release: find the registered version of the model file, tag it with the release and image digest, and
    point `champion` at it. Returns the registered version."""
    mlflow.set_tracking_uri(uri)
    version = model_version(name, model_md5)
    client = MlflowClient()
    _set_tags(client, name, version, {RELEASE_VERSION_TAG: release_version, IMAGE_DIGEST_TAG: image_digest})
    promote(name, version, CHAMPION)
    if actor:
        client.set_model_version_tag(name, version, "released_by", actor)
    return version


def version_of_release(uri: str, name: str, release_version: str) -> str:
    """The registered version that a release (image version tag) serves."""
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    for found in client.search_model_versions(f"name = '{name}'"):
        if found.tags.get(RELEASE_VERSION_TAG) == release_version:
            return str(found.version)
    raise LookupError(f"no version of registered model {name!r} is tagged {RELEASE_VERSION_TAG}={release_version}")


def roll_back_champion(uri: str, name: str, release_version: str, *, actor: str, at: str) -> str:
    """Point `champion` at the version that served `release_version`, recording who moved it and when."""
    version = version_of_release(uri, name, release_version)
    promote(name, version, CHAMPION)
    _set_tags(MlflowClient(), name, version, {"rolled_back_to_by": actor or "unknown", "rolled_back_to_at": at})
    return version
