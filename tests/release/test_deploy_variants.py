"""The deploy/ variants beside the environments: the service behind KServe (an InferenceService in Standard mode,
validated strictly against the KServe CRD schema kept in deploy/kserve) and batch scoring as a Job (validated
strictly against the Kubernetes schemas); both run the released image, pinned by digest, locked down."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from mltemplate.release import deploy
from tests.conftest import ROOT

KSERVE, BATCH = deploy.DEPLOY_DIR / "kserve", deploy.DEPLOY_DIR / "batch"


@pytest.fixture(scope="module")
def kserve() -> list[dict[str, Any]]:
    return deploy.documents(deploy.render(ROOT / KSERVE))


@pytest.fixture(scope="module")
def batch() -> list[dict[str, Any]]:
    return deploy.documents(deploy.render(ROOT / BATCH))


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [obj for obj in objects if obj["kind"] == kind]
    return found


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["predictor"] if obj["kind"] == "InferenceService" else obj["spec"]["template"]["spec"]


def test_the_inference_service_passes_the_kept_kserve_schema_strictly(kserve: list[dict[str, Any]]) -> None:
    assert deploy.custom_resource_errors(kserve, ROOT) == []
    others = [obj for obj in kserve if obj["kind"] != "InferenceService"]
    assert deploy.schema_errors(others) == []


def test_the_kserve_schema_check_refuses_an_unknown_field(kserve: list[dict[str, Any]]) -> None:
    service = _one(kserve, "InferenceService")
    container = _pod(service)["containers"][0]
    container["securityContext"] = {**container["securityContext"], "readOnlyRootFileSystem": True}
    service["spec"]["predictor"]["minReplica"] = 1
    errors = deploy.custom_resource_errors([service], ROOT)
    assert any("'readOnlyRootFileSystem' was unexpected" in error for error in errors), errors
    assert any("'minReplica' was unexpected" in error for error in errors), errors


def test_kserve_runs_it_in_standard_mode_with_the_v2_health_probes(kserve: list[dict[str, Any]]) -> None:
    service = _one(kserve, "InferenceService")
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in {"Standard", "RawDeployment"}
    (container,) = _pod(service)["containers"]
    assert container["name"] == "kserve-container"
    ports = {port["name"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {container[p]["httpGet"]["port"] for p in ("readinessProbe", "livenessProbe", "startupProbe")} <= ports
    env = {item["name"]: item["value"] for item in container["env"]}
    assert int(env["SERVE_WORKERS"]) == int(container["resources"]["limits"]["cpu"])


@pytest.mark.parametrize("version", [deploy.KUBERNETES_VERSION, kubernetes_validate.latest_version()])
def test_the_batch_job_passes_the_kubernetes_schema_strictly(batch: list[dict[str, Any]], version: str) -> None:
    assert deploy.schema_errors(batch, version) == []


def test_the_batch_job_scores_once_with_the_batch_command(batch: list[dict[str, Any]]) -> None:
    job = _one(batch, "Job")
    pod = _pod(job)
    assert (pod["restartPolicy"], job["spec"]["backoffLimit"]) == ("Never", 0)
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "mltemplate.batch"]
    args = container["args"]
    workers, limit = int(args[args.index("--workers") + 1]), args[args.index("--memory-limit") + 1]
    assert workers == int(container["resources"]["limits"]["cpu"])
    assert limit.endswith("GiB")
    assert int(container["resources"]["limits"]["memory"].removesuffix("Gi")) > workers * int(limit[:-3])
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {_one(batch, "PersistentVolumeClaim")["metadata"]["name"]}


@pytest.mark.parametrize("variant", ["kserve", "batch"])
def test_variants_run_the_image_pinned_by_digest_locked_down(variant: str, request: pytest.FixtureRequest) -> None:
    objects: list[dict[str, Any]] = request.getfixturevalue(variant)
    assert all(deploy.IMAGE_REF.fullmatch(image) for image in deploy.images(objects))
    assert deploy.images(objects)
    (namespace,) = [o for o in objects if o["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    workload = next(o for o in objects if o["kind"] in {"InferenceService", "Job"})
    pod = _pod(workload)
    assert (pod["automountServiceAccountToken"], pod["enableServiceLinks"]) == (False, False)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts


def test_the_kept_schema_names_its_source_and_version() -> None:
    readme = (ROOT / KSERVE / "README.md").read_text(encoding="utf-8")
    schema = (ROOT / deploy.CUSTOM_SCHEMAS[("serving.kserve.io/v1beta1", "InferenceService")]).read_text()
    assert "kserve/kserve" in readme
    assert "v0.20.0" in readme
    assert "v0.20.0" in schema[:400]
