"""publish.py: what a release publishes, decided from the image's labels and the registry's tags."""

from __future__ import annotations

import pytest

from mltemplate.errors import CommandError
from mltemplate.release import publish
from mltemplate.release.publish import Built, Plan

OLD = "2026.01.02-030405-aaaaaaa"
NEW = "2026.02.03-040506-bbbbbbb"
IMAGE = Built(name="demo", version=NEW, model_key="0123456789abcdef", model_md5="f" * 32)


def labels(**overrides: str) -> dict[str, str]:
    found = {
        publish.TITLE_LABEL: "demo",
        publish.VERSION_LABEL: NEW,
        publish.KEY_LABEL: "0123456789abcdef",
        publish.MD5_LABEL: "f" * 32,
    }
    found.update(overrides)
    return found


def test_built_reads_the_release_from_the_labels() -> None:
    assert publish.built(labels(), where="img") == IMAGE


@pytest.mark.parametrize("label", [publish.TITLE_LABEL, publish.VERSION_LABEL, publish.KEY_LABEL, publish.MD5_LABEL])
def test_built_names_a_missing_label(label: str) -> None:
    with pytest.raises(CommandError, match=f"img: label {label} is missing"):
        publish.built(labels(**{label: ""}), where="img")


def test_built_refuses_a_version_that_is_not_a_release_version() -> None:
    with pytest.raises(CommandError, match="'latest' is not a release version"):
        publish.built(labels(**{publish.VERSION_LABEL: "latest"}), where="img")


def test_a_new_model_key_is_published() -> None:
    assert publish.plan(IMAGE, [OLD, "latest", "model-other"], None).action == "publish"


def test_a_released_model_key_publishes_nothing() -> None:
    found = publish.plan(IMAGE, [OLD, "latest", publish.key_tag(IMAGE.model_key)], None)
    assert found == Plan("unchanged", NEW, f"model key {IMAGE.model_key} is already released; nothing to publish")


def test_a_pushed_version_of_the_same_model_is_resumed() -> None:
    assert publish.plan(IMAGE, [NEW], IMAGE.model_key).action == "resume"


def test_a_version_tag_holding_another_model_is_immutable() -> None:
    with pytest.raises(CommandError, match=f"version tag {NEW} already holds another model .*immutable"):
        publish.plan(IMAGE, [NEW], "fedcba9876543210")


def test_versions_keeps_release_tags_oldest_first() -> None:
    assert publish.versions([NEW, "latest", "production", OLD, "model-0123", "abc1234"]) == [OLD, NEW]


@pytest.mark.parametrize(("new", "current", "forward"), [(NEW, None, True), (NEW, OLD, True), (OLD, NEW, False)])
def test_tags_only_move_forward(new: str, current: str | None, forward: bool) -> None:
    assert publish.is_forward(new, current) is forward
