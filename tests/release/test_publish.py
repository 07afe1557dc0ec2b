"""publish.py: what a release publishes, decided from the image's labels and the registry's tags, and the gate it must
pass first (thresholds, and the comparison with the model in production unless a maintainer forces it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mltemplate.comparison import Comparison, Difference
from mltemplate.errors import CommandError
from mltemplate.release import comparison, publish
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


# --- the gate before a push: thresholds always, the comparison with production unless forced with a reason -------


@pytest.fixture
def release_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout about to publish: a params.yaml of its own (binary, an accuracy floor of 0.8, a tolerance of
    0.02) and metrics.json meeting it."""
    params = {
        "name": "demo",
        "seed": 0,
        "data": {"raw": "data/raw/demo.csv", "target": "y", "positive_class": "yes"},
        "split": {"test_size": 0.25},
        "model": {"estimator": "logistic_regression"},
        "evaluate": {"thresholds": {"accuracy": 0.8}, "tolerance": 0.02},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.85}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    against(Difference("accuracy", 0.85, 0.85, -0.01, 0.01))
    return tmp_path


def against(*differences: Difference) -> None:
    """build/comparison.json: this model against production's (OLD) on 200 shared rows."""
    found = Comparison(rows=200, differences=differences)
    comparison.write(comparison.AgainstProduction(OLD, "a" * 40, "from the DVC cache or remote", found))


WORSE = Difference("accuracy", 0.95, 0.85, -0.14, -0.06)
"""Confidently worse than production's by more than the tolerance."""
REASON = "production's labels were wrong; this model is scored on the corrected ones"


def test_a_model_as_good_as_production_s_passes_the_gate(release_checkout: Path) -> None:
    assert publish.check_gate({}) is None


def test_a_threshold_failure_is_refused_even_with_a_reason(release_checkout: Path) -> None:
    (release_checkout / "metrics.json").write_text(json.dumps({"accuracy": 0.7}), encoding="utf-8")
    against(WORSE)  # and worse than production's, which alone a reason could force
    with pytest.raises(
        CommandError, match=r"quality gate failed \(accuracy 0.7000 is below .*\): nothing is published$"
    ):
        publish.check_gate({publish.FORCE_REASON: REASON})


def test_a_model_confidently_worse_than_production_s_is_refused_without_a_reason(release_checkout: Path) -> None:
    against(WORSE)
    with pytest.raises(
        CommandError, match=rf"accuracy is confidently worse .*\(or set {publish.FORCE_REASON}, saying why\)"
    ):
        publish.check_gate({})


def test_a_reason_forces_a_tolerance_failure_and_is_kept_for_the_release_notes(
    release_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    against(WORSE)

    def no_image(source: str) -> dict[str, str]:
        raise CommandError("stop before the registry")

    monkeypatch.setattr(publish, "_labels", no_image)
    with pytest.raises(CommandError, match="stop before the registry"):
        publish.push("docker-archive:x.tar", {publish.FORCE_REASON: REASON, "GITHUB_ACTOR": "maintainer"})
    notes = publish.FORCE_FILE.read_text(encoding="utf-8")
    assert notes.startswith(f"**Published although the gate failed against production {OLD}**, by maintainer: {REASON}")
    assert "The gate said: accuracy is confidently worse than the base: 0.9500 -> 0.8500" in notes


@pytest.mark.parametrize(
    "reason", ["too short", "a reason\nwith a second line in it", "a bell \x07 in the reason", "x" * 501]
)
def test_a_reason_that_is_not_one_printable_line_is_refused(release_checkout: Path, reason: str) -> None:
    against(WORSE)
    with pytest.raises(
        CommandError, match=f"{publish.FORCE_REASON} must be 10 to 500 printable characters on one line"
    ):
        publish.check_gate({publish.FORCE_REASON: reason})
    assert not publish.FORCE_FILE.exists()


def test_without_a_comparison_with_production_nothing_is_published(release_checkout: Path) -> None:
    (release_checkout / comparison.COMPARISON_FILE).unlink()
    with pytest.raises(CommandError, match="run `make compare-production` first"):
        publish.check_gate({})
