"""container.py: image name, tags and OCI labels, and the `bentoml containerize` command they make.
(Building, running and pushing need a Docker engine, which the test machines do not have.)"""

from __future__ import annotations

import pytest

from mltemplate.errors import CommandError
from mltemplate.release import container
from mltemplate.release.provenance import Release

REL = Release(
    version="2026.11.23-203152-667333a",
    git_commit="667333aeac87dc09ad2be003a1cab49940103c7b",
    model_md5="acafe47e2aaee9af6bf6aca34d38e52d",
    data_md5="e9b944627d1dedf79eccded14bf80881",
    mlflow_run_id="b0ec815c7ff64723bfc4e9bcec681c14",
    trained_at="2026-11-23T20:40:28+00:00",
    built_at="2026-11-23T20:41:31+00:00",
)


def test_image_name_is_ghcr_owner_repo_lowercased() -> None:
    assert container.image_name({"GITHUB_REPOSITORY": "My-Org/ML-Template"}) == "ghcr.io/my-org/ml-template"


def test_image_env_overrides_the_repository() -> None:
    assert container.image_name({"IMAGE": "Registry.example/Team/App", "GITHUB_REPOSITORY": "a/b"}) == (
        "registry.example/team/app"
    )


@pytest.mark.parametrize("repository", ["", "no-owner", "a/b/c"])
def test_image_name_needs_owner_and_repo(repository: str) -> None:
    with pytest.raises(CommandError, match="set IMAGE or GITHUB_REPOSITORY"):
        container.image_name({"GITHUB_REPOSITORY": repository})


def test_tags_are_version_short_sha_and_latest() -> None:
    dirty = Release(**{**REL.to_dict(), "git_commit": REL.git_commit + "-dirty"})
    expected = ["img:2026.11.23-203152-667333a", "img:667333a", "img:latest"]
    assert container.tags("img", REL) == expected
    assert container.tags("img", dirty) == expected


def test_labels_link_the_image_to_its_sources_and_model() -> None:
    labels = container.labels(REL, source="https://github.com/o/r", title="clf")
    assert labels["org.opencontainers.image.revision"] == REL.git_commit
    assert labels["org.opencontainers.image.source"] == "https://github.com/o/r"
    assert labels["org.opencontainers.image.version"] == REL.version
    assert labels["dev.mltemplate.data-md5"] == REL.data_md5
    assert labels["dev.mltemplate.mlflow-run-id"] == REL.mlflow_run_id


def test_source_url_from_the_actions_environment() -> None:
    env = {"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "o/r"}
    assert container.source_url(env) == "https://github.example/o/r"


def test_containerize_command_passes_every_tag_and_label() -> None:
    command = container.containerize_command("clf:v1", ["i:a", "i:b"], {"k.one": "1", "k.two": "x y"})
    assert command[-9:] == [
        "clf:v1",
        "--image-tag",
        "i:a",
        "--image-tag",
        "i:b",
        "--opt",
        "label=k.one=1",
        "--opt",
        "label=k.two=x y",
    ]
    assert command[1:4] == ["-m", "bentoml", "containerize"]


def test_bento_tag_is_the_one_make_bento_builds() -> None:
    assert container.bento_tag(REL, "clf") == "clf:2026.11.23-203152-667333a"
