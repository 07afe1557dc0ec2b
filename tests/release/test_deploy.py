"""The Kubernetes manifests (deploy/): every rendering passes the Kubernetes schemas strictly, keeps the pods locked
down and probed, and `make deploy` / `make pin` render, refuse and apply as documented. Renders with the real
(locked) kubectl; only the cluster end of `kubectl apply` is a stub."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from mltemplate.errors import CommandError
from mltemplate.release import deploy
from mltemplate.report.loadtest import served
from tests.conftest import ROOT, subprocess_env
from tests.service_client import post_json, request

ENVIRONMENTS = deploy.environments(ROOT)
RENDERINGS = ["base", *ENVIRONMENTS]
DIGEST = "sha256:" + "ab" * 32


def _render(name: str, root: Path = ROOT) -> list[dict[str, Any]]:
    folder = deploy.BASE_DIR if name == "base" else deploy.OVERLAYS_DIR / name
    return deploy.documents(deploy.render(root / folder))


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: _render(name) for name in RENDERINGS}


def _of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert found, f"no {kind} rendered"
    return found


def _pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [obj["spec"]["template"] for obj in _of_kind(objects, "Deployment")]


def _containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for pod in _pods(objects) for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]]


def _cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of deploy/ to change, with the real kubectl."""
    shutil.copytree(ROOT / deploy.DEPLOY_DIR, tmp_path / deploy.DEPLOY_DIR)
    return tmp_path


def test_there_are_environments() -> None:
    assert {"staging", "production"} <= set(ENVIRONMENTS)


@pytest.mark.parametrize("version", [deploy.KUBERNETES_VERSION, kubernetes_validate.latest_version()])
@pytest.mark.parametrize("name", RENDERINGS)
def test_every_manifest_passes_the_kubernetes_schema_strictly(
    rendered: dict[str, Any], name: str, version: str
) -> None:
    assert deploy.schema_errors(rendered[name], version) == []


def test_the_schema_check_refuses_an_unknown_field() -> None:
    deployment = _of_kind(_render("base"), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    (error,) = deploy.schema_errors([deployment])
    assert "Deployment/prediction-service: spec.template.spec.containers.0.securityContext" in error
    assert "'readOnlyRootFileSystem' was unexpected" in error


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overlays_pin_every_image_by_digest(rendered: dict[str, Any], env: str) -> None:
    images = deploy.images(rendered[env])
    assert images
    assert all(deploy.IMAGE_REF.fullmatch(image) for image in images), images


@pytest.mark.parametrize("name", RENDERINGS)
def test_pods_run_as_non_root_with_a_read_only_root_fs_and_no_privileges(rendered: dict[str, Any], name: str) -> None:
    for pod in _pods(rendered[name]):
        context = pod["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] > 0
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in _containers(rendered[name]):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert not context.get("capabilities", {}).get("add")
        assert context.get("privileged", False) is False


@pytest.mark.parametrize("name", RENDERINGS)
def test_pods_get_no_service_account_token_and_no_service_links(rendered: dict[str, Any], name: str) -> None:
    for pod in _pods(rendered[name]):
        assert pod["spec"]["automountServiceAccountToken"] is False
        assert pod["spec"]["enableServiceLinks"] is False


@pytest.mark.parametrize("name", RENDERINGS)
def test_writable_paths_are_emptydir_volumes_including_tmp(rendered: dict[str, Any], name: str) -> None:
    for pod in _pods(rendered[name]):
        volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
        for container in pod["spec"]["containers"]:
            writable = [mount for mount in container["volumeMounts"] if not mount.get("readOnly")]
            mounts = {mount["mountPath"]: mount["name"] for mount in writable}
            assert "/tmp" in mounts
            assert all("emptyDir" in volumes[volume] for volume in mounts.values())
            env = {item["name"]: item.get("value") for item in container["env"]}
            assert env["BENTOML_HOME"] in mounts  # BentoML writes its home at start


@pytest.mark.parametrize("name", RENDERINGS)
def test_the_feedback_credentials_are_a_secret_mounted_read_only_where_the_service_reads_them(
    rendered: dict[str, Any], name: str
) -> None:
    for pod in _pods(rendered[name]):
        volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
        for container in pod["spec"]["containers"]:
            env = {item["name"]: item.get("value") for item in container["env"]}
            path = Path(env["SERVE_FEEDBACK_TOKEN_FILE"])
            (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent]
            assert mount["readOnly"] is True
            secret = volumes[mount["name"]]["secret"]
            assert [item["path"] for item in secret["items"]] == [path.name]
            assert secret["defaultMode"] & 0o022 == 0  # nobody may write it


@pytest.mark.parametrize("name", RENDERINGS)
def test_probes_point_at_livez_and_readyz_on_the_serving_port(rendered: dict[str, Any], name: str) -> None:
    for container in _containers(rendered[name]):
        ports = {port["name"] for port in container["ports"]}
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] in {"/livez", "/readyz"}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] in ports


@pytest.mark.parametrize("name", RENDERINGS)
def test_containers_request_and_limit_cpu_and_memory(rendered: dict[str, Any], name: str) -> None:
    for container in _containers(rendered[name]):
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) >= {"cpu", "memory"}
        assert _cores(container["resources"]["requests"]["cpu"]) <= _cores(container["resources"]["limits"]["cpu"])


@pytest.mark.parametrize("name", RENDERINGS)
def test_one_worker_per_core_of_the_cpu_limit(rendered: dict[str, Any], name: str) -> None:
    for container in _of_kind(rendered[name], "Deployment")[0]["spec"]["template"]["spec"]["containers"]:
        env = {item["name"]: item.get("value") for item in container["env"]}
        cores = _cores(container["resources"]["limits"]["cpu"])
        assert cores == int(cores), "give the service whole cores: one worker each"
        assert int(env["SERVE_WORKERS"]) == int(cores)


@pytest.mark.parametrize("name", RENDERINGS)
def test_service_hpa_and_pdb_point_at_the_deployment(rendered: dict[str, Any], name: str) -> None:
    objects = rendered[name]
    (deployment,) = _of_kind(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it; an apply must not reset it
    (service,) = _of_kind(objects, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    container_ports = {port["name"] for port in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= container_ports
    (pdb,) = _of_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (hpa,) = _of_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "prediction-service",
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]


def test_production_keeps_a_pod_serving_through_a_disruption(rendered: dict[str, Any]) -> None:
    (hpa,) = _of_kind(rendered["production"], "HorizontalPodAutoscaler")
    (pdb,) = _of_kind(rendered["production"], "PodDisruptionBudget")
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["maxUnavailable"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_has_its_own_namespace_and_instance_label(rendered: dict[str, Any], env: str) -> None:
    namespaces = {obj["metadata"].get("namespace") for obj in rendered[env] if obj["kind"] != "Namespace"}
    (namespace,) = _of_kind(rendered[env], "Namespace")
    assert namespaces == {namespace["metadata"]["name"]}
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for pod in _pods(rendered[env]):
        assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == env


@pytest.mark.parametrize("env", ["", "prod", "../base"])
def test_unknown_environment_is_refused_naming_the_known_ones(env: str) -> None:
    with pytest.raises(CommandError, match=re.escape(str(ENVIRONMENTS))):
        deploy.overlay(env, ROOT)


def test_pin_sets_name_and_digest_and_keeps_the_comments(repo: Path) -> None:
    path = repo / deploy.OVERLAYS_DIR / "staging" / "kustomization.yaml"
    comments = [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")]
    assert deploy.pin("staging", f"ghcr.io/acme/churn@{DIGEST}", repo) == f"ghcr.io/acme/churn@{DIGEST}"
    assert [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")] == comments
    assert deploy.images(_render("staging", repo)) == [f"ghcr.io/acme/churn@{DIGEST}"]
    assert deploy.images(_render("production", repo)) == deploy.images(_render("production"))


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/acme/churn:1.0",
        "ghcr.io/acme/churn@sha256:abc",
        f"ghcr.io/acme/churn:1.0@{DIGEST}",
        f"ghcr.io/acme/churn@{DIGEST}\nx: y",
        f"churn@{DIGEST}",
        "",
    ],
)
def test_pin_refuses_an_image_without_a_full_digest(repo: Path, image: str) -> None:
    before = (repo / deploy.OVERLAYS_DIR / "staging" / "kustomization.yaml").read_text()
    with pytest.raises(CommandError, match=r"IMAGE must be <name>@sha256:<64 hex digits>"):
        deploy.pin("staging", image, repo)
    assert (repo / deploy.OVERLAYS_DIR / "staging" / "kustomization.yaml").read_text() == before


def test_deploy_refuses_a_manifest_the_schema_refuses(repo: Path) -> None:
    path = repo / deploy.BASE_DIR / "deployment.yaml"
    path.write_text(path.read_text().replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"))
    with pytest.raises(CommandError, match=r"Kubernetes 1\.\d+ refuses:\n.*'readOnlyRootFileSystem' was unexpected"):
        deploy.apply("staging", dry_run=True, root=repo)


def test_deploy_refuses_an_image_pinned_by_tag(repo: Path) -> None:
    path = repo / deploy.OVERLAYS_DIR / "staging" / "kustomization.yaml"
    path.write_text(re.sub(r"digest: sha256:[0-9a-f]+", 'newTag: "1.0"', path.read_text()))
    with pytest.raises(CommandError, match=r"runs images not pinned by digest: \['[^'@]+:1\.0'\]"):
        deploy.apply("staging", dry_run=True, root=repo)


def test_deploy_refuses_the_placeholder_digest(repo: Path) -> None:
    deploy.pin("staging", f"ghcr.io/acme/churn@{deploy.PLACEHOLDER_DIGEST}", repo)
    with pytest.raises(CommandError, match=r"placeholder image .*: pin a released one with `make pin ENV=staging"):
        deploy.apply("staging", dry_run=False, root=repo)


def test_deploy_applies_the_checked_manifests(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kubectl renders for real; a wrapper records what `kubectl apply` would send to a cluster."""
    real = deploy.kubectl()
    sent = repo / "applied.yaml"
    wrapper = repo / "kubectl"
    wrapper.write_text(
        "#!/usr/bin/env bash\nset -eu\n"
        f'case "$1" in\n  kustomize) exec "{real}" "$@" ;;\n'
        "  config) echo test-context ;;\n"
        f'  apply) echo "$@" > "{repo}/args"; cat > "{sent}"; echo applied ;;\n'
        "  *) exit 9 ;;\nesac\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("KUBECTL", str(wrapper))
    deploy.pin("staging", f"ghcr.io/acme/churn@{DIGEST}", repo)
    assert deploy.apply("staging", dry_run=False, root=repo) == "applied\n"
    assert (repo / "args").read_text().split() == ["apply", "-f", "-"]
    assert sent.read_text() == deploy.apply("staging", dry_run=True, root=repo)


def test_make_deploy_dry_run_prints_the_overlay() -> None:
    result = subprocess.run(
        ["make", "-s", "-o", "setup", "-o", ".venv/.synced", "deploy", "ENV=staging", "DRY_RUN=1", "RUN="],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert deploy.documents(result.stdout) == _render("staging")


def test_make_deploy_refuses_an_unknown_environment() -> None:
    result = subprocess.run(
        ["make", "-s", "-o", "setup", "-o", ".venv/.synced", "deploy", "ENV=nowhere", "RUN="],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"error: unknown environment 'nowhere': deploy/overlays has {ENVIRONMENTS}" in result.stderr


def _read_only_root(tmp_path: Path, repo: Path) -> list[str] | None:
    """A prefix that runs a command with the whole file system read-only except tmpfs mounts at tmp_path/tmp,
    tmp_path/bentoml-home and repo/monitoring (the pod's emptyDirs); None where mount namespaces are refused."""
    if shutil.which("unshare") is None:
        return None
    writable = [tmp_path / "tmp", tmp_path / "bentoml-home", repo / "monitoring"]
    for path in writable:
        path.mkdir(exist_ok=True)
    script = "mount -o remount,bind,ro / && " + " && ".join(f"mount -t tmpfs -o size=64m tmpfs '{p}'" for p in writable)
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{script} && exec "$@"', "sh"]
    probe = subprocess.run([*prefix, "sh", "-c", f"! touch '{tmp_path}/written'"], capture_output=True, text=True)
    return prefix if probe.returncode == 0 else None


@pytest.mark.integration
def test_the_service_runs_on_a_read_only_root_file_system(
    pipeline_repo: Path, tmp_path: Path, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    """The pod's settings (its env from the rendered Deployment), with only the emptyDir paths writable."""
    repo = Path(shutil.copytree(pipeline_repo, tmp_path / "repo", symlinks=True))
    prefix = _read_only_root(tmp_path, repo)
    if prefix is None:
        pytest.skip("this machine refuses a mount namespace (unshare needs root or CAP_SYS_ADMIN)")
    (container,) = _of_kind(rendered["base"], "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    tokens = tmp_path / "feedback-tokens"  # what the Secret's volume holds in the pod
    tokens.write_text("default:a-token-the-secret-would-hold\n")
    env |= {"BENTOML_HOME": str(tmp_path / "bentoml-home"), "TMPDIR": str(tmp_path / "tmp")}
    env |= {"SERVE_FEEDBACK_TOKEN_FILE": str(tokens)}
    with served(repo, env=env, prefix=prefix, timeout=90) as base:
        assert request(base, "/readyz", method="GET").status == 200
        assert post_json(base, json.loads((repo / "examples" / "predict.json").read_text())).status == 200
