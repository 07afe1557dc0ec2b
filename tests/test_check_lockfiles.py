"""tools/check_lockfiles.py: lock files may fetch only from their index, each file with its hash."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

SHA = "sha256:" + "a" * 64
GOOD_UV = f"""
version = 1

[[package]]
name = "mltemplate"
version = "0.1.0"
source = {{ editable = "." }}

[[package]]
name = "six"
version = "1.0"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.pythonhosted.org/packages/six-1.0.tar.gz", hash = "{SHA}" }}
wheels = [{{ url = "https://files.pythonhosted.org/packages/six-1.0-py3-none-any.whl", hash = "{SHA}" }}]
"""
INTEGRITY = "sha512-" + "A" * 86 + "=="


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lockfiles", ROOT / "tools/check_lockfiles.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _load_script()


def test_the_repository_s_lock_files_pass() -> None:
    result = subprocess.run([sys.executable, "tools/check_lockfiles.py"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "3 lock file(s)" in result.stdout


def test_a_pypi_lock_with_hashes_passes(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(GOOD_UV)
    assert check.uv_lock_problems(tmp_path / "uv.lock") == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("https://files.pythonhosted.org/packages/six-1.0-py3", "https://evil.example/six-1.0-py3", "is not on"),
        (f'whl", hash = "{SHA}"', 'whl", hash = "md5:abc"', "has no sha256"),
        ('source = { registry = "https://pypi.org/simple" }', 'source = { git = "https://x/six" }', "is not the index"),
        (
            'source = { registry = "https://pypi.org/simple" }',
            'source = { registry = "https://m.example/simple" }',
            "is not the index",
        ),
        ('source = { editable = "." }', 'source = { path = "../elsewhere" }', "is not the index"),
    ],
    ids=["wheel-elsewhere", "no-sha256", "git-source", "other-index", "path-source"],
)
def test_a_uv_lock_entry_off_the_index_or_without_a_hash_fails(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    assert old in GOOD_UV
    (tmp_path / "uv.lock").write_text(GOOD_UV.replace(old, new, 1))
    problems = check.uv_lock_problems(tmp_path / "uv.lock")
    assert problems
    assert problem in problems[0]


def npm_lock(tmp_path: Path, **package: object) -> Path:
    path = tmp_path / "package-lock.json"
    entry = {"version": "1.0.0", "integrity": INTEGRITY, **package}
    path.write_text(json.dumps({"lockfileVersion": 3, "packages": {"": {"name": "x"}, "node_modules/a": entry}}))
    return path


def test_an_npm_lock_from_the_registry_with_integrity_passes(tmp_path: Path) -> None:
    assert check.npm_lock_problems(npm_lock(tmp_path, resolved="https://registry.npmjs.org/a/-/a-1.0.0.tgz")) == []
    assert check.npm_lock_problems(npm_lock(tmp_path)) == []  # no `resolved`: npm takes it from the registry


@pytest.mark.parametrize(
    ("package", "problem"),
    [
        ({"resolved": "https://evil.example/a-1.0.0.tgz"}, "resolved from"),
        ({"resolved": "git+ssh://git@github.com/a/a.git"}, "resolved from"),
        ({"integrity": None}, "no sha512 integrity"),
        ({"integrity": "sha1-abc"}, "no sha512 integrity"),
        ({"link": True, "resolved": "../a"}, "links to"),
    ],
    ids=["tarball-elsewhere", "git", "no-integrity", "sha1", "link"],
)
def test_an_npm_entry_off_the_registry_or_without_integrity_fails(
    tmp_path: Path, package: dict[str, object], problem: str
) -> None:
    problems = check.npm_lock_problems(npm_lock(tmp_path, **package))
    assert problems
    assert problem in problems[0]


def test_the_command_exits_1_naming_each_problem(tmp_path: Path) -> None:
    bad = npm_lock(tmp_path, resolved="https://evil.example/a.tgz")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/check_lockfiles.py"), str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "error: " in result.stderr
    assert "node_modules/a" in result.stderr
