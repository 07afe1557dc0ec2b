"""A real OCI registry on loopback (Debian's `docker-registry`) and tiny OCI images written by Python, so the
publish and rollback code runs against real `skopeo` without a Docker engine."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from mltemplate.probe import free_port

MISSING = [tool for tool in ("docker-registry", "skopeo") if shutil.which(tool) is None]
needs_registry = pytest.mark.skipif(
    bool(MISSING) and not os.environ.get("CI"),  # in CI a missing tool fails the tests instead of skipping them
    reason=f"{', '.join(MISSING)} not installed: `make system-deps` installs them (Debian packages)",
)


@contextmanager
def oci_registry(root: Path) -> Iterator[str]:
    """`docker-registry serve` on a free loopback port, storing under `root`; yields host:port."""
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    server = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"docker-registry did not start: {server.stderr.read() if server.stderr else ''}"
                    ) from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def oci_image(layout: Path, labels: Mapping[str, str], *, files: Mapping[str, str] | None = None) -> str:
    """Write a one-layer OCI image layout with these labels (and files in its layer); returns its skopeo reference."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in (files or {"app/labels.json": json.dumps(dict(labels), sort_keys=True)}).items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    layer = _blob(layout, buffer.getvalue())
    config = _blob(
        layout,
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": dict(labels)},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
            }
        ).encode(),
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
    }
    described = _blob(layout, json.dumps(manifest).encode())
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **described,
                "annotations": {"org.opencontainers.image.ref.name": "built"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return f"oci:{layout}:built"
