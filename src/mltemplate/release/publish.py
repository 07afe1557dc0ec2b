"""Publish a built image, gated and idempotent: `push` checks the quality gate and pushes the image under its
immutable version tag (unless a release of the same model key exists); `promote` then moves `latest` (forward only)
and `production` to it, points the MLflow `champion` alias at its registered version when a tracking server is
configured, and finally writes the `model-<key>` tag that marks the release complete. Re-running either step
changes nothing. Image: IMAGE, else ghcr.io/<GITHUB_REPOSITORY>; source: the archive `make container-save` wrote."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mltemplate import atomic, gate
from mltemplate.errors import CommandError, run
from mltemplate.metrics import read_metrics
from mltemplate.params import load_params
from mltemplate.release import comparison, container, oci

LATEST = "latest"
PRODUCTION = "production"
"""The tag deployments run (deploy/overlays/production); a release moves it, a rollback moves it back."""
KEY_TAG_PREFIX = "model-"
VERSION_PATTERN = re.compile(r"^\d{4}\.\d{2}\.\d{2}-\d{6}-[0-9a-f]{7}$")
VERSION_LABEL = f"{container.LABEL_PREFIX}.version"
TITLE_LABEL = f"{container.LABEL_PREFIX}.title"
REVISION_LABEL = f"{container.LABEL_PREFIX}.revision"
KEY_LABEL = f"{container.MODEL_LABEL_PREFIX}.model-key"
MD5_LABEL = f"{container.MODEL_LABEL_PREFIX}.model-md5"


@dataclass(frozen=True)
class Built:
    """What the image to publish says about itself (its labels)."""

    name: str
    version: str
    model_key: str
    model_md5: str


def built(labels: Mapping[str, str], *, where: str) -> Built:
    """The release an image's labels describe; CommandError naming the first label that is missing or wrong."""
    for label in (TITLE_LABEL, VERSION_LABEL, KEY_LABEL, MD5_LABEL):
        if not labels.get(label):
            raise CommandError(f"{where}: label {label} is missing or empty (build it with `make container`)")
    version = labels[VERSION_LABEL]
    if not VERSION_PATTERN.match(version):
        raise CommandError(
            f"{where}: label {VERSION_LABEL}={version!r} is not a release version (YYYY.MM.DD-HHMMSS-sha7)"
        )
    return Built(labels[TITLE_LABEL], version, labels[KEY_LABEL], labels[MD5_LABEL])


def key_tag(model_key: str) -> str:
    return f"{KEY_TAG_PREFIX}{model_key}"


def versions(tags: list[str]) -> list[str]:
    """The release version tags, oldest first (versions sort by commit time)."""
    return sorted(tag for tag in tags if VERSION_PATTERN.match(tag))


def is_forward(new: str, current: str | None) -> bool:
    """Whether moving a tag from release `current` to `new` goes forward in time (or sets it the first time)."""
    return current is None or new >= current


@dataclass(frozen=True)
class Plan:
    """What `push` does: `publish` the image, `resume` a release whose version tag is already there, or nothing
    (`unchanged`) because a release of this model key is complete."""

    action: str
    version: str
    reason: str


def plan(image: Built, tags: list[str], existing_key: str | None) -> Plan:
    """Decide from the registry's tags (and the model key of the image already under this version tag, if any)."""
    if key_tag(image.model_key) in tags:
        return Plan("unchanged", image.version, f"model key {image.model_key} is already released; nothing to publish")
    if image.version in tags:
        if existing_key != image.model_key:
            raise CommandError(
                f"version tag {image.version} already holds another model (key {existing_key or 'unknown'}, "
                f"this image's is {image.model_key}): version tags are immutable"
            )
        return Plan("resume", image.version, f"version {image.version} is pushed; finishing its release")
    return Plan("publish", image.version, f"new model key {image.model_key}: publishing version {image.version}")


FORCE_REASON = "FORCE_REASON"
"""The variable through which a maintainer publishes a model that is confidently worse than production's (only the
tolerance, never a threshold), saying why; the reason goes into the release notes."""
FORCE_FILE = Path("build/forced.md")
REASON = re.compile(r"^[^\x00-\x1f\x7f]{10,500}$")


def check_gate(env: Mapping[str, str]) -> str | None:
    """The gate (mltemplate.gate, as `make gate`) on the committed metrics.json and on the comparison with the
    model in production (build/comparison.json): a model that misses a threshold or a slice-gap limit is never
    published; one confidently worse than production's only with FORCE_REASON, which is returned."""
    found = comparison.read()
    verdict = gate.judge(read_metrics(), load_params().evaluate, comparison=found.comparison)
    if verdict.passed:
        return None
    shown = "; ".join(c.reason() for c in verdict.failed)
    reason = env.get(FORCE_REASON, "").strip()
    if not reason or any(c.kind != "tolerance" for c in verdict.failed):
        how = "" if any(c.kind != "tolerance" for c in verdict.failed) else f" (or set {FORCE_REASON}, saying why)"
        raise CommandError(f"the quality gate failed ({shown}): nothing is published{how}")
    if not REASON.match(reason):
        raise CommandError(f"{FORCE_REASON} must be 10 to 500 printable characters on one line")
    print(f"publish: forced past the gate by {env.get('GITHUB_ACTOR') or 'a maintainer'}: {reason}")
    return (
        f"**Published although the gate failed against production {found.version}**, by "
        f"{env.get('GITHUB_ACTOR') or 'a maintainer'}: {reason}\n\nThe gate said: {shown}\n"
    )


def write_outputs(env: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    text = "".join(f"{key}={value}\n" for key, value in outputs.items())
    print(text, end="")
    if env.get("GITHUB_OUTPUT"):
        with Path(env["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as handle:
            handle.write(text)


def push(source: str, env: Mapping[str, str]) -> Plan:
    """Gate, then push `source` under its version tag unless the plan says otherwise; nothing else moves here. A
    forced release writes its reason to build/forced.md, for the release notes."""
    forced = check_gate(env)
    if forced is not None:
        atomic.write_text(FORCE_FILE, forced)
    image = built(_labels(source), where=source)
    registry = oci.Registry(container.image_name(env), env)
    tags = registry.tags()
    existing = registry.inspect(image.version) if image.version in tags else None
    decided = plan(image, tags, existing.labels.get(KEY_LABEL) if existing else None)
    print(f"publish: {decided.reason}")
    digest = ""
    if decided.action == "publish":
        digest = registry.copy(source, image.version)
    elif decided.action == "resume" and existing is not None:
        digest = existing.digest
    write_outputs(
        env,
        {
            "published": str(decided.action != "unchanged").lower(),
            "image": registry.image,
            "digest": digest,
            "version": decided.version,
        },
    )
    return decided


def _labels(source: str) -> Mapping[str, str]:
    return oci.inspect(source).labels


def promote(version: str, env: Mapping[str, str], *, actor: str = "") -> None:
    """Finish the release of `version`: latest (forward only), production, the MLflow champion alias, then the
    model-key tag that marks it complete. A complete release is left alone."""
    registry = oci.Registry(container.image_name(env), env)
    target = registry.inspect(version)
    if target is None:
        raise CommandError(f"{registry.image}:{version} does not exist: run `make publish` first")
    image = built(target.labels, where=f"{registry.image}:{version}")
    tags = registry.tags()
    if key_tag(image.model_key) in tags:
        print(f"publish: {registry.image}:{key_tag(image.model_key)} exists; release {version} is complete")
        return
    # A release only moves tags forward: a late re-run of an older release must not roll production back
    # silently (that is what `make rollback` is for, and it says who did it).
    moved = [tag for tag in (LATEST, PRODUCTION) if _move_forward(registry, tag, version, target.digest)]
    champion = point_champion(image, version, target.digest, env, actor=actor) if PRODUCTION in moved else ""
    registry.retag(target.digest, key_tag(image.model_key))
    done = ", ".join(moved) or "nothing"
    print(f"publish: {registry.image}:{version} ({target.digest}) released; moved: {done}{champion}")


def _move_forward(registry: oci.Registry, tag: str, version: str, digest: str) -> bool:
    current = registry.inspect(tag)
    current_version = current.labels.get(VERSION_LABEL) if current else None
    if not is_forward(version, current_version):
        print(f"publish: {tag} stays at {current_version}, which is newer than {version}")
        return False
    if current is None or current.digest != digest:
        registry.retag(digest, tag)
    return True


def point_champion(image: Built, version: str, digest: str, env: Mapping[str, str], *, actor: str) -> str:
    """Point the MLflow `champion` alias at the registered version of the image's model; a note for the log line."""
    uri = env.get("MLFLOW_TRACKING_URI")
    if not uri:
        return "; no MLFLOW_TRACKING_URI: the GitHub Releases hold the history"
    from mltemplate.registry import aliases

    registered = aliases.champion(
        uri, image.name, image.model_md5, release_version=version, image_digest=digest, actor=actor
    )
    return f"; MLflow {image.name}@{aliases.CHAMPION} -> version {registered}"


def production(env: Mapping[str, str]) -> tuple[str, str] | None:
    """The version and git commit of the release `production` points at; None before the first release."""
    registry = oci.Registry(container.image_name(env), env)
    found = registry.inspect(PRODUCTION)
    if found is None:
        return None
    version, commit = found.labels.get(VERSION_LABEL), found.labels.get(REVISION_LABEL)
    if not version or not commit:
        raise CommandError(f"{registry.image}:{PRODUCTION} has no {VERSION_LABEL} or {REVISION_LABEL} label")
    return version, commit


def compare(env: Mapping[str, str]) -> comparison.AgainstProduction:
    """This checkout's model against production's (build/comparison.json): what the card shows and `push` judges."""
    found = production(env)
    result = comparison.nothing_in_production() if found is None else comparison.against(*found, load_params())
    comparison.write(result)
    c = result.comparison
    print(f"publish: against production {result.version}: " + (c.reason or f"compared on {c.rows} shared rows"))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.release.publish", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("compare", help="compare this model with production's (build/comparison.json)")
    push_parser = sub.add_parser("push", help="gate, then push the image under its version tag")
    push_parser.add_argument("--source", default=f"docker-archive:{container.ARCHIVE}", help="skopeo reference")
    promote_parser = sub.add_parser("promote", help="move latest (forward) and production, set champion, mark done")
    promote_parser.add_argument("version", help="the version `push` printed")
    args = parser.parse_args(argv)
    if args.command == "compare":
        compare(os.environ)
    elif args.command == "push":
        push(args.source, os.environ)
    else:
        promote(args.version, os.environ, actor=os.environ.get("GITHUB_ACTOR", ""))


if __name__ == "__main__":
    sys.exit(run(main))
