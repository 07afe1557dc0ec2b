"""The service's container image: `build` runs `bentoml containerize` on the last Bento with OCI labels that link
the image to its sources (and name its model key and registry version), tagged <release version>, <short sha> and
latest in the local engine; `smoke` runs the image and smoke-tests it before anything is pushed; `save` writes it to
build/image.tar, which the publishing job pushes with `python -m mltemplate.release.publish` (no Docker there).
Image name: ghcr.io/<owner>/<repo> from GITHUB_REPOSITORY (lowercased), or IMAGE."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from mltemplate.errors import CommandError
from mltemplate.identity import Release, read_release
from mltemplate.params import load_params
from mltemplate.paths import RELEASE_FILE
from mltemplate.probe import NotReady, free_port, wait_ready
from mltemplate.release import smoke

REGISTRY = "ghcr.io"
SERVICE_PORT = 3000
"""The port `bentoml serve` listens on inside the image."""
LABEL_PREFIX = "org.opencontainers.image"
MODEL_LABEL_PREFIX = "dev.mltemplate"
ARCHIVE = Path("build/image.tar")
"""`save` writes the built image here (docker-archive): the build job hands it to the publishing job."""


def image_name(env: Mapping[str, str]) -> str:
    """IMAGE if set, else ghcr.io/<GITHUB_REPOSITORY> lowercased (registry paths must be lowercase)."""
    if env.get("IMAGE"):
        return env["IMAGE"].lower()
    repository = env.get("GITHUB_REPOSITORY", "")
    if repository.count("/") != 1:
        raise CommandError(f"set IMAGE or GITHUB_REPOSITORY=<owner>/<repo> to name the image, got {repository!r}")
    return f"{REGISTRY}/{repository.lower()}"


def tags(image: str, rel: Release) -> list[str]:
    """Release version (unique, sortable), short commit sha, and latest."""
    sha = rel.git_commit.removesuffix("-dirty")[:7]
    return [f"{image}:{rel.version}", f"{image}:{sha}", f"{image}:latest"]


def labels(rel: Release, *, source: str, title: str) -> dict[str, str]:
    """OCI labels plus the data hash, model hash and MLflow run id the image serves."""
    return {
        f"{LABEL_PREFIX}.title": title,
        f"{LABEL_PREFIX}.version": rel.version,
        f"{LABEL_PREFIX}.revision": rel.git_commit,
        f"{LABEL_PREFIX}.source": source,
        f"{LABEL_PREFIX}.created": rel.built_at,
        f"{MODEL_LABEL_PREFIX}.data-md5": rel.data_md5,
        f"{MODEL_LABEL_PREFIX}.model-md5": rel.model_md5,
        f"{MODEL_LABEL_PREFIX}.mlflow-run-id": rel.mlflow_run_id or "",
        f"{MODEL_LABEL_PREFIX}.model-key": rel.model_key or "",
        f"{MODEL_LABEL_PREFIX}.registry-version": rel.registry_version or "",
    }


def source_url(env: Mapping[str, str]) -> str:
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    repository = env.get("GITHUB_REPOSITORY", "")
    return f"{server}/{repository}" if repository else "unknown"


def bento_tag(rel: Release, name: str) -> str:
    """The Bento `make bento` built: named like params.yaml's `name`, versioned with the release version."""
    return f"{name}:{rel.version}"


def containerize_command(bento: str, image_tags: list[str], image_labels: Mapping[str, str]) -> list[str]:
    command = [sys.executable, "-m", "bentoml", "containerize", bento]
    for tag in image_tags:
        command += ["--image-tag", tag]
    for key, value in image_labels.items():
        command += ["--opt", f"label={key}={value}"]
    return command


def _release() -> Release:
    found = read_release()
    if found is None:
        raise CommandError(f"{RELEASE_FILE} not found: run `make bento` first")
    return found


def build(env: Mapping[str, str]) -> None:
    rel = _release()
    image = image_name(env)
    name = load_params().name
    command = containerize_command(
        bento_tag(rel, name), tags(image, rel), labels(rel, source=source_url(env), title=name)
    )
    if subprocess.run(command, check=False).returncode != 0:
        raise CommandError(f"bentoml containerize failed for {image} (is Docker running?)")
    print(f"container: built {', '.join(tags(image, rel))}")


@contextmanager
def running(image: str, *, timeout: float = 120.0) -> Iterator[str]:
    """`docker run` the image on a free loopback port; yields its URL once /readyz answers; removes it after."""
    port = free_port()
    started = subprocess.run(
        ["docker", "run", "--detach", "--rm", "--publish", f"127.0.0.1:{port}:{SERVICE_PORT}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        raise CommandError(f"docker run {image} failed: {started.stderr.strip()}")
    container = started.stdout.strip()
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, timeout=timeout, interval=1.0)
        except NotReady as error:
            logs = subprocess.run(["docker", "logs", "--tail", "40", container], capture_output=True, text=True)
            raise CommandError(f"{image}: {error}:\n{logs.stdout}{logs.stderr}") from None
        yield url
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True, check=False)


def smoke_image(env: Mapping[str, str]) -> None:
    rel = _release()
    image = tags(image_name(env), rel)[0]
    with running(image) as url:
        smoke.check(url, expect_version=rel.version)
    print(f"container: {image} passed the smoke test")


def save(env: Mapping[str, str]) -> None:
    """Write the image built by `build` to ARCHIVE, for `python -m mltemplate.release.publish` to push."""
    rel = _release()
    image = tags(image_name(env), rel)[0]
    ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["docker", "save", "--output", str(ARCHIVE), image], check=False).returncode != 0:
        raise CommandError(f"docker save {image} failed (run `make container` first)")
    print(f"container: {image} saved to {ARCHIVE}")


COMMANDS = {"build": build, "smoke": smoke_image, "save": save}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.release.container", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    args = parser.parse_args(argv)
    COMMANDS[args.command](os.environ)


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
