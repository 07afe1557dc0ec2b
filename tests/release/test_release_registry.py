"""Publish, re-release and rollback against a real OCI registry on loopback (docker-registry + skopeo) and a real
MLflow model registry (SQLite store): the release's promises, end to end, without a Docker engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from mltemplate.errors import CommandError
from mltemplate.identity import Release, new_release
from mltemplate.metrics import METRICS
from mltemplate.model_metadata import ModelMetadata
from mltemplate.params import load_params
from mltemplate.registry import aliases
from mltemplate.registry.runs import MODEL_MD5_TAG
from mltemplate.release import comparison, container, oci, publish, rollback
from mltemplate.schema import Schema
from tests.conftest import DESCRIPTION, ROOT, subprocess_env
from tests.release.oci_registry import needs_registry, oci_image, oci_registry

pytestmark = [pytest.mark.integration, needs_registry]

NAME = "demo-classifier"
SCHEMA = Schema(numeric=("x",), categorical=(), target="y", positive_class="b")
V1, V2, V3 = "2026.01.01-010101-aaaaaaa", "2026.01.02-020202-bbbbbbb", "2026.01.03-030303-ccccccc"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A fresh registry and MLflow store; the working directory holds a params.yaml and metrics.json that pass the
    gate (own thresholds, so the test does not depend on the bundled model)."""
    work = tmp_path / "work"
    work.mkdir()
    write_gate_files(work, value=0.9, threshold=0.8)
    monkeypatch.chdir(work)
    with oci_registry(tmp_path) as host:
        yield {
            "IMAGE": f"{host}/team/{NAME}",
            "REGISTRY_TLS_VERIFY": "false",
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "GITHUB_ACTOR": "octocat",
        }


def write_gate_files(work: Path, *, value: float, threshold: float) -> None:
    """What the gate reads before a push: params.yaml, metrics.json and the comparison with production, which these
    images (no git commit behind them) have none to compare with: `make compare-production` of a first release."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    metric = floor_metric(raw)
    raw["evaluate"]["thresholds"] = {metric: threshold}
    (work / "params.yaml").write_text(yaml.safe_dump(raw))
    (work / "metrics.json").write_text(json.dumps({metric: value}))
    comparison.write(comparison.nothing_in_production(), work / comparison.COMPARISON_FILE)


def floor_metric(raw: dict) -> str:
    """A higher-is-better metric of the project's task (whichever task its params.yaml names)."""
    return next(metric.name for metric in METRICS[raw["data"]["task"]] if metric.higher_is_better)


def image(tmp_path: Path, version: str, key: str) -> str:
    """A built image (OCI layout) of model `key`: its md5 is derived from the key, like a real model file's."""
    return oci_image(
        tmp_path / f"image-{version}-{key}",
        {
            publish.TITLE_LABEL: NAME,
            publish.VERSION_LABEL: version,
            publish.KEY_LABEL: key,
            publish.MD5_LABEL: md5_of(key),
        },
    )


def md5_of(key: str) -> str:
    return (key * 2)[:32]


def register(uri: str, key: str) -> str:
    """What `dvc repro` with a tracking server does for model `key`: see register_md5."""
    return register_md5(uri, md5_of(key))


def register_md5(uri: str, model_md5: str) -> str:
    """What `dvc repro` with a tracking server does: a run tagged with the model md5, registered as a version."""
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    found = client.get_experiment_by_name(NAME)
    experiment = found.experiment_id if found else client.create_experiment(NAME)
    run = client.create_run(experiment, tags={MODEL_MD5_TAG: model_md5})
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{NAME}'"):
        client.create_registered_model(NAME)
    return str(client.create_model_version(NAME, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id).version)


def release(source: str, env: dict[str, str]) -> publish.Plan:
    """The publishing job's two make steps (attestation, GitHub only, goes between them)."""
    plan = publish.push(source, env)
    if plan.action != "unchanged":
        publish.promote(plan.version, env, actor=env["GITHUB_ACTOR"])
    return plan


def tags(env: dict[str, str]) -> dict[str, str]:
    """Every tag of the image and the digest it points to."""
    registry = oci.Registry(env["IMAGE"], env)
    found = {}
    for tag in registry.tags():
        described = registry.inspect(tag)
        assert described is not None
        found[tag] = described.digest
    return found


def champion(env: dict[str, str]) -> str:
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    return str(MlflowClient().get_model_version_by_alias(NAME, aliases.CHAMPION).version)


def test_a_release_pushes_version_latest_production_and_points_champion(env: dict[str, str], tmp_path: Path) -> None:
    registered = register(env["MLFLOW_TRACKING_URI"], "1111111111111111")
    assert release(image(tmp_path, V1, "1111111111111111"), env).action == "publish"
    found = tags(env)
    assert set(found) == {V1, "latest", "production", "model-1111111111111111"}
    assert len(set(found.values())) == 1
    assert champion(env) == registered
    version = MlflowClient().get_model_version(NAME, registered)
    assert version.tags[aliases.RELEASE_VERSION_TAG] == V1
    assert version.tags[aliases.IMAGE_DIGEST_TAG] == found[V1]


def test_re_running_a_release_changes_nothing_and_succeeds(env: dict[str, str], tmp_path: Path) -> None:
    register(env["MLFLOW_TRACKING_URI"], "1111111111111111")
    source = image(tmp_path, V1, "1111111111111111")
    release(source, env)
    before = tags(env)
    assert release(source, env).action == "unchanged"
    assert tags(env) == before


def test_a_push_that_leaves_the_model_unchanged_publishes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    register(env["MLFLOW_TRACKING_URI"], "1111111111111111")
    release(image(tmp_path, V1, "1111111111111111"), env)
    before = tags(env)
    # A later commit (docs only) builds the same model: a new version label, the same model key.
    assert release(image(tmp_path, V2, "1111111111111111"), env).action == "unchanged"
    assert tags(env) == before


def test_a_failing_gate_publishes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    write_gate_files(Path(), value=0.5, threshold=0.8)
    metric = floor_metric(yaml.safe_load(Path("params.yaml").read_text()))
    with pytest.raises(
        CommandError,
        match=rf"quality gate failed \({metric} 0.5000 is below its threshold 0.8000 .*\): nothing is published",
    ):
        publish.push(image(tmp_path, V1, "1111111111111111"), env)
    assert tags(env) == {}


def test_a_version_tag_is_never_overwritten(env: dict[str, str], tmp_path: Path) -> None:
    register(env["MLFLOW_TRACKING_URI"], "1111111111111111")
    publish.push(image(tmp_path, V1, "1111111111111111"), env)
    before = tags(env)
    with pytest.raises(CommandError, match=f"version tag {V1} already holds another model"):
        publish.push(image(tmp_path, V1, "2222222222222222"), env)
    assert tags(env) == before


def test_an_interrupted_release_is_finished_by_its_re_run(env: dict[str, str], tmp_path: Path) -> None:
    register(env["MLFLOW_TRACKING_URI"], "1111111111111111")
    source = image(tmp_path, V1, "1111111111111111")
    publish.push(source, env)  # the job stopped here (e.g. the attestation failed)
    assert "production" not in tags(env)
    assert release(source, env).action == "resume"
    assert set(tags(env)) == {V1, "latest", "production", "model-1111111111111111"}


def test_an_older_release_published_later_moves_no_tag_back(env: dict[str, str], tmp_path: Path) -> None:
    for key in ("1111111111111111", "2222222222222222"):
        register(env["MLFLOW_TRACKING_URI"], key)
    release(image(tmp_path, V2, "2222222222222222"), env)
    newest_champion = champion(env)
    release(image(tmp_path, V1, "1111111111111111"), env)
    found = tags(env)
    assert found["latest"] == found["production"] == found[V2]
    assert champion(env) == newest_champion


def commit(repo: Path, when: str) -> None:
    """A commit at `when` (the release version is its time and sha)."""
    dated = {"GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when, "PATH": "/usr/bin:/bin"}
    for args in (
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x"],
    ):
        subprocess.run(args, cwd=repo, env=dated, check=True, capture_output=True)


def built_image(tmp_path: Path, repo: Path, model: ModelMetadata) -> tuple[str, Release]:
    """What `make bento` and `make container` make of the model at HEAD of `repo` with its params.yaml: the release
    (the one constructor, keyed by the params) and an image labelled with it."""
    found = new_release(model, repo=repo, params=load_params(repo / "params.yaml"))
    source = oci_image(tmp_path / f"image-{found.version}", container.labels(found, source="test", title=NAME))
    return source, found


def test_a_second_run_with_only_monitor_changed_publishes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True, capture_output=True)
    shutil.copy2(Path("params.yaml"), repo / "params.yaml")
    commit(repo, "2026-01-01T01:01:01+00:00")
    model = ModelMetadata.model_validate(
        {**DESCRIPTION, "name": NAME, "schema": SCHEMA, "classes": ["a", "b"], "model_md5": "f" * 32}
    )
    register_md5(env["MLFLOW_TRACKING_URI"], model.model_md5)
    first, released = built_image(tmp_path, repo, model)
    assert release(first, env).action == "publish"
    before = tags(env)
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    metric = METRICS[raw["data"]["task"]][0].name
    # A tighter production floor, a longer window: the monitor's policy, not the model.
    raw["monitor"] = {**raw.get("monitor", {}), "thresholds": {metric: 0.99}, "window": "7d"}
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    commit(repo, "2026-01-02T02:02:02+00:00")
    second, rebuilt = built_image(tmp_path, repo, model)
    assert rebuilt.version != released.version
    assert rebuilt.model_key == released.model_key
    assert release(second, env).action == "unchanged"
    assert tags(env) == before


@pytest.fixture
def three_releases(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """V1, V2, V3 released in order; returns the registered MLflow version of each."""
    registered = {}
    for version, key in ((V1, "1111111111111111"), (V2, "2222222222222222"), (V3, "3333333333333333")):
        registered[version] = register(env["MLFLOW_TRACKING_URI"], key)
        release(image(tmp_path, version, key), env)
    return registered


def test_rollback_to_previous_repoints_production_and_champion(
    env: dict[str, str], three_releases: dict[str, str]
) -> None:
    done = rollback.rollback("previous", env)
    found = tags(env)
    assert (done.version, done.replaced, done.actor) == (V2, V3, "octocat")
    assert found["production"] == found[V2] == done.digest
    assert found["latest"] == found[V3]  # latest names the newest release; production is what runs
    assert champion(env) == three_releases[V2] == done.registry_version
    rollback.rollback("previous", env)
    assert tags(env)["production"] == found[V1]
    assert champion(env) == three_releases[V1]


def test_rollback_to_a_named_version(env: dict[str, str], three_releases: dict[str, str]) -> None:
    rollback.rollback(V1, env)
    found = tags(env)
    assert found["production"] == found[V1]
    assert champion(env) == three_releases[V1]
    rollback.rollback(V3, env)  # rolling forward again is the same step
    assert tags(env)["production"] == found[V3]


def test_rollback_refuses_an_unknown_version_and_moves_nothing(
    env: dict[str, str], three_releases: dict[str, str], tmp_path: Path
) -> None:
    before = tags(env)
    result = subprocess.run(
        [sys.executable, "-m", "mltemplate.release.rollback", "2025.12.31-000000-0000000"],
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "error: unknown release '2025.12.31-000000-0000000': expected 'previous' or a released version" in (
        result.stderr
    )
    assert tags(env) == before
    assert champion(env) == three_releases[V3]


def make(work: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A Makefile target as the workflows run it, with this session's environment standing in for `make setup`."""
    return subprocess.run(
        ["make", *args, "RUN="], cwd=work, env=subprocess_env(**env), capture_output=True, text=True, timeout=300
    )


def test_the_make_targets_publish_promote_and_roll_back(env: dict[str, str], tmp_path: Path) -> None:
    work = Path.cwd()
    for name in ("Makefile", "pyproject.toml", "uv.lock"):
        shutil.copy2(ROOT / name, work / name)
    (work / ".venv").mkdir()
    (work / ".venv" / ".synced").touch()  # newer than pyproject.toml and uv.lock: `make setup` is satisfied
    outputs = tmp_path / "github_output"
    for version, key in ((V1, "1111111111111111"), (V2, "2222222222222222")):
        register(env["MLFLOW_TRACKING_URI"], key)
        pushed = make(
            work, "publish", f"SOURCE={image(tmp_path, version, key)}", env={**env, "GITHUB_OUTPUT": str(outputs)}
        )
        assert pushed.returncode == 0, pushed.stderr
        assert f"version={version}" in outputs.read_text()
        promoted = make(work, "promote", env={**env, "VERSION": version})
        assert promoted.returncode == 0, promoted.stderr
    assert make(work, "rollback", env=env).returncode == 0
    found = tags(env)
    assert found["production"] == found[V1]
    assert json.loads((work / "build" / "deployment.json").read_text())["replaced"] == V2
    unknown = make(work, "rollback", "TO=2020.01.01-000000-0000000", env=env)
    assert unknown.returncode != 0
    assert "unknown release '2020.01.01-000000-0000000'" in unknown.stderr
    missing = make(work, "promote", env=env)
    assert "give the release to promote: make promote VERSION=<version>" in missing.stderr
