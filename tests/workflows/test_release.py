"""release.yml and rollback.yml under act, on one repository and one loopback registry (GHCR's stand-in), in order:
a push to main with releases off publishes nothing; with releases on, CI runs on the commit, the build job gates,
builds the Bento, builds and smoke-tests the image (on the docker stand-in) and hands it over, and the publishing job
checks its environment, pushes the version tag, attests it, creates the GitHub Release with the model card as notes
and moves `latest` and `production`; a second run publishes nothing. Then rollback: hostile `version` inputs run
nothing, an environment without reviewers moves nothing, and `previous` moves production back."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mltemplate.params import load_params
from mltemplate.release import oci, publish
from tests.conftest import ROOT
from tests.release.oci_registry import needs_registry, oci_image
from tests.workflows.act import Act, Run
from tests.workflows.conftest import REPOSITORY, Repo, make_act, new_repo, record
from tests.workflows.github_api import FakeGitHub, serving

pytestmark = [pytest.mark.integration, pytest.mark.workflows, needs_registry, pytest.mark.timeout(1800)]

OLD = "2020.01.01-000000-0000000"
REVIEWED = {
    "protection_rules": [{"type": "required_reviewers", "reviewers": [{"type": "User", "reviewer": {"login": "lead"}}]}]
}
HOOKS = [
    hook["id"]
    for repo in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"]
    for hook in repo["hooks"]
]
CI_RAN_IN_ITS_OWN_CASE = {
    # test_ci.py runs ci.yml in full; inside a release, its jobs run for real but check one test module, no hook.
    "SKIP": ",".join(HOOKS),
    "PYTEST_ADDOPTS": "-p no:cacheprovider -m 'not integration' tests/test_params.py",
}


@pytest.fixture(scope="module")
def repo(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return new_repo(template, tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="module")
def github(repo: Repo) -> Iterator[FakeGitHub]:
    with serving(FakeGitHub(REPOSITORY, remote=repo.remote, environments={"production": REVIEWED})) as found:
        yield found


@pytest.fixture(scope="module")
def image(registry: str) -> str:
    return f"{registry}/{REPOSITORY}-{id(registry)}"


@pytest.fixture(scope="module")
def act(
    github: FakeGitHub, image: str, workflow_actions: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Act]:
    runner = make_act(
        github, tmp_path_factory.mktemp("release-act"), workflow_actions, IMAGE=image, REGISTRY_TLS_VERIFY="false"
    )
    yield runner
    record("release and rollback", runner)


def registry_state(image: str) -> dict[str, str]:
    """tag -> digest."""
    registry = oci.Registry(image, {"REGISTRY_TLS_VERIFY": "false"})
    return {tag: found.digest for tag in registry.tags() if (found := registry.inspect(tag)) is not None}


@pytest.fixture(scope="module")
def old_release(image: str, repo: Repo, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An earlier release already in production (what a rollback goes back to, and what the build job compares the
    candidate with: built from this very commit, so its model is the candidate's); returns its digest."""
    key = "0" * 16
    labels = {
        publish.TITLE_LABEL: load_params(ROOT / "params.yaml").name,
        publish.VERSION_LABEL: OLD,
        publish.REVISION_LABEL: repo.head(),
        publish.KEY_LABEL: key,
        publish.MD5_LABEL: "0" * 32,
    }
    registry = oci.Registry(image, {"REGISTRY_TLS_VERIFY": "false"})
    digest = registry.copy(oci_image(tmp_path_factory.mktemp("old-image"), labels), OLD)
    for tag in (publish.LATEST, publish.PRODUCTION, publish.key_tag(key)):
        registry.retag(digest, tag)
    return digest


def release(act: Act, repo: Repo, *, enabled: bool) -> Run:
    payload = {"ref": "refs/heads/main", "before": "0" * 40, "after": repo.head(), "head_commit": {"id": repo.head()}}
    variables = {"RELEASE_ENABLED": "true"} if enabled else {}
    return act.run(repo.path, "release.yml", "push", payload, variables=variables, env=CI_RAN_IN_ITS_OWN_CASE)


@pytest.fixture(scope="module")
def off(act: Act, repo: Repo, image: str, old_release: str) -> tuple[Run, dict[str, str]]:
    before = registry_state(image)
    return release(act, repo, enabled=False), before


@pytest.fixture(scope="module")
def first(act: Act, repo: Repo, off: tuple[Run, dict[str, str]]) -> Run:
    return release(act, repo, enabled=True)


@pytest.fixture(scope="module")
def second(act: Act, repo: Repo, image: str, first: Run) -> tuple[Run, dict[str, str]]:
    before = registry_state(image)
    return release(act, repo, enabled=True), before


def test_with_releases_off_a_push_to_main_runs_ci_and_publishes_nothing(
    off: tuple[Run, dict[str, str]], github: FakeGitHub, image: str
) -> None:
    run, before = off
    assert {job: run.result(job) for job in ("CI/lint", "CI/test", "CI/workflows")} == dict.fromkeys(
        ("CI/lint", "CI/test", "CI/workflows"), "success"
    ), run.explain()
    assert run.result("not-enabled") == "success", run.explain()
    assert (run.result("build"), run.result("publish")) == ("skipped", "skipped")
    assert registry_state(image) == before
    assert github.writes() == []


def test_with_releases_on_the_image_reaches_the_registry_and_latest_and_production_move(
    first: Run, github: FakeGitHub, image: str, old_release: str
) -> None:
    assert (first.result("build"), first.result("publish")) == ("success", "success"), first.explain()
    assert first.result("not-enabled") == "skipped"
    assert first.leftovers == []  # the smoke test's served image (and its workers) stopped with its job
    (version,) = github.releases
    tags = registry_state(image)
    assert publish.VERSION_PATTERN.match(version)
    assert tags[publish.LATEST] == tags[publish.PRODUCTION] == tags[version] != old_release
    assert any(tag.startswith(publish.KEY_TAG_PREFIX) and digest == tags[version] for tag, digest in tags.items())
    (attestation,) = github.attestations
    assert attestation["bundle"]["subject"] == [{"name": image, "digest": {"sha256": tags[version][7:]}}]
    paths = [c.path for c in github.calls if c.method == "GET" or c.path.endswith(("/releases", "/attestations"))]
    assert paths.index(f"/repos/{REPOSITORY}/environments/production") < paths.index(f"/repos/{REPOSITORY}/releases")


def test_the_release_notes_are_the_model_card_the_build_job_wrote(first: Run, github: FakeGitHub) -> None:
    (artifact,) = [a for a in github.artifacts if a.run_id == str(first.run_id) and a.name == "release"]
    with zipfile.ZipFile(io.BytesIO(artifact.data)) as archive:
        assert sorted(archive.namelist()) == ["comparison.json", "image.tar", "model-card.md"]
        card = archive.read("model-card.md").decode()
        against = json.loads(archive.read("comparison.json"))
    ((version, notes),) = github.releases.items()
    assert notes["body"] == card  # not forced: no build/forced.md ahead of the card
    assert notes["tag_name"] == notes["name"] == version
    assert version in card.splitlines()[0]
    # the build job compared the candidate with production's model, reproduced from production's commit
    assert first.step("build", "Compare with the model in production on the same rows (build/comparison.json)") == (
        "success"
    )
    assert against["version"] == OLD
    assert against["comparison"]["rows"] > 0, against
    assert "## Compared with the model in production" in card


def test_a_second_run_on_the_same_commit_publishes_nothing(
    second: tuple[Run, dict[str, str]], github: FakeGitHub, image: str
) -> None:
    run, before = second
    assert (run.result("build"), run.result("publish")) == ("success", "success"), run.explain()
    for step in (
        "Attest build provenance",
        "Create the GitHub Release unless it exists (notes = model card)",
        "Move latest and production forward, point the MLflow champion alias, mark the release complete",
    ):
        assert run.step("publish", step) == "skipped"
    assert registry_state(image) == before
    assert len(github.releases) == len(github.attestations) == 1


# --- rollback -----------------------------------------------------------------------------------------------


def rollback(act: Act, repo: Repo, version: str, *, enabled: bool = True) -> Run:
    variables = {"RELEASE_ENABLED": "true"} if enabled else {}
    return act.run(
        repo.path,
        "rollback.yml",
        "workflow_dispatch",
        {"inputs": {"version": version}},
        inputs={"version": version},
        variables=variables,
    )


@pytest.mark.parametrize(
    "hostile",
    ['previous"; touch {pwned}; "', "$(shell touch {pwned})", "previous\ntouch {pwned}", "`touch {pwned}`"],
    ids=["quotes", "make-shell", "newline", "backticks"],
)
def test_a_hostile_version_input_runs_nothing_and_moves_nothing(
    act: Act, repo: Repo, image: str, second: tuple[Run, dict[str, str]], hostile: str, tmp_path: Path
) -> None:
    before = registry_state(image)
    pwned = tmp_path / "pwned"
    run = rollback(act, repo, hostile.format(pwned=pwned))
    assert run.result("rollback") == "failure", run.explain()
    assert run.step(
        "rollback", 'Check the version input ("previous" or a release version) before anything uses it'
    ) == ("failure")
    assert run.step("rollback", "Re-point the production tag and the champion alias (recorded in the job summary)") == (
        "skipped"
    )
    assert not pwned.exists()
    assert registry_state(image) == before


def test_rollback_refuses_an_environment_without_reviewers(
    act: Act, repo: Repo, github: FakeGitHub, image: str, second: tuple[Run, dict[str, str]]
) -> None:
    before = registry_state(image)
    github.environments["production"] = {"protection_rules": []}
    try:
        run = rollback(act, repo, "previous")
    finally:
        github.environments["production"] = REVIEWED
    assert run.step("rollback", "Refuse to move production from an environment without required reviewers") == (
        "failure"
    ), run.explain()
    assert registry_state(image) == before


def test_with_releases_off_rollback_moves_nothing(
    act: Act, repo: Repo, image: str, second: tuple[Run, dict[str, str]]
) -> None:
    before = registry_state(image)
    run = rollback(act, repo, "previous", enabled=False)
    assert (run.result("not-enabled"), run.result("rollback")) == ("success", "skipped"), run.explain()
    assert registry_state(image) == before


def test_rollback_to_previous_moves_production_back(
    act: Act, repo: Repo, image: str, old_release: str, second: tuple[Run, dict[str, str]]
) -> None:
    before = registry_state(image)
    run = rollback(act, repo, "previous")
    assert run.result("rollback") == "success", run.explain()
    after = registry_state(image)
    assert after[publish.PRODUCTION] == old_release != before[publish.PRODUCTION]
    assert after[publish.LATEST] == before[publish.LATEST]  # latest stays at the newest release
