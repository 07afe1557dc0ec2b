"""tools/install_cml.py: CML is installed only when its download matches the sha256 pinned in tools/cml/SHA256SUMS;
no pinned sha256, or another one, installs nothing (fail closed)."""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT

BINARY = b"#!/bin/sh\necho 0.20.6\n"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_cml", ROOT / "tools/install_cml.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install_cml = _load_script()


@pytest.fixture
def releases() -> Iterator[str]:
    """A stand-in release host serving BINARY as v0.20.6/cml-linux-x64."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/v0.20.6/cml-linux-x64"
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(BINARY) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(BINARY)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def sums(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "SHA256SUMS"
    path.write_text(f"# pinned\n{line}\n")
    return path


def test_the_committed_file_pins_only_well_formed_lines() -> None:
    for line in install_cml.SUMS.read_text().splitlines():
        assert line.startswith("#") or len(line.split()) == 2, line


def test_a_download_matching_the_pinned_sha256_is_installed(releases: str, tmp_path: Path) -> None:
    pinned = sums(tmp_path, f"{hashlib.sha256(BINARY).hexdigest()}  v0.20.6/cml-linux-x64")
    folder = install_cml.install("0.20.6", tmp_path / "tools", releases=releases, sums=pinned)
    assert (folder / "cml").read_bytes() == BINARY
    assert (folder / "cml").stat().st_mode & 0o111


def test_a_download_with_another_sha256_is_not_installed(releases: str, tmp_path: Path) -> None:
    pinned = sums(tmp_path, f"{'0' * 64}  v0.20.6/cml-linux-x64")
    with pytest.raises(SystemExit, match="not the pinned"):
        install_cml.install("0.20.6", tmp_path / "tools", releases=releases, sums=pinned)
    assert list((tmp_path / "tools" / "0.20.6").iterdir()) == []


def test_no_pinned_sha256_installs_nothing_and_says_how_to_pin_it(releases: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"pins no sha256 for v0\.20\.6/cml-linux-x64") as found:
        install_cml.install("0.20.6", tmp_path / "tools", releases=releases, sums=sums(tmp_path, "# nothing yet"))
    assert "<sha256>  v0.20.6/cml-linux-x64" in str(found.value)
    assert not (tmp_path / "tools").exists()


@pytest.mark.parametrize("version", ["latest", "0.20", "0.20.6; id"])
def test_only_a_release_version_is_installed(tmp_path: Path, version: str) -> None:
    with pytest.raises(SystemExit, match="is not a CML version"):
        install_cml.install(version, tmp_path / "tools", sums=sums(tmp_path, "# none"))


def test_a_cml_on_path_at_the_pinned_version_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cml").write_bytes(BINARY)
    (tmp_path / "cml").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert install_cml.installed("0.20.6") == str(tmp_path / "cml")
    assert install_cml.installed("0.20.7") is None
