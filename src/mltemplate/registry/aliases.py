"""Registered model versions and the `champion` alias. A release tags the version it serves with its release version
and points `champion` at it; a rollback points `champion` at the version tagged with the release it goes back to.
Those tags are the one record of which version served which release (the image tags hold it without MLflow)."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from mltemplate.registry.runs import MODEL_MD5_TAG

CHAMPION = "champion"
"""The alias a release points at the model it serves in production; `make rollback` moves it back."""
RELEASE_VERSION_TAG = "release_version"
IMAGE_DIGEST_TAG = "image_digest"


def model_version(name: str, model_md5: str) -> str:
    """The newest registered version of `name` whose run logged the model file with this md5."""
    client = MlflowClient()
    for version in sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: -int(v.version)):
        if version.run_id and client.get_run(version.run_id).data.tags.get(MODEL_MD5_TAG) == model_md5:
            return str(version.version)
    raise LookupError(f"no version of registered model {name!r} was trained on model file {model_md5}")


def _crown(client: MlflowClient, name: str, version: str, tags: dict[str, str]) -> None:
    """Tag `version` and point `champion` at it."""
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHAMPION, version)


def champion(uri: str, name: str, model_md5: str, *, release_version: str, image_digest: str, actor: str = "") -> str:
    """At release: find the registered version of the model file, tag it with the release and image digest (and
    who released it), and point `champion` at it. Returns the registered version."""
    mlflow.set_tracking_uri(uri)
    version = model_version(name, model_md5)
    tags = {RELEASE_VERSION_TAG: release_version, IMAGE_DIGEST_TAG: image_digest}
    _crown(MlflowClient(), name, version, {**tags, **({"released_by": actor} if actor else {})})
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
    """Point `champion` at the version tagged with `release_version`, recording who moved it and when."""
    version = version_of_release(uri, name, release_version)
    _crown(MlflowClient(), name, version, {"rolled_back_to_by": actor or "unknown", "rolled_back_to_at": at})
    return version
