"""tools/install_uv.py: the pinned uv without pip (the Makefile's fallback)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT, copy_repo, run
from tests.test_fresh_machine import pinned_uv_version


def _load_script() -> ModuleType:
    # A script beside the Makefile, not part of the package.
    spec = importlib.util.spec_from_file_location("install_uv", ROOT / "tools/install_uv.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install_uv = _load_script()

WHEELS = [
    "uv-1.0.0-py3-none-linux_armv6l.whl",
    "uv-1.0.0-py3-none-macosx_10_12_x86_64.whl",
    "uv-1.0.0-py3-none-macosx_11_0_arm64.whl",
    "uv-1.0.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
    "uv-1.0.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "uv-1.0.0-py3-none-musllinux_1_1_x86_64.whl",
    "uv-1.0.0-py3-none-win_amd64.whl",
    "uv-1.0.0.tar.gz",
]


@pytest.mark.parametrize(
    ("system", "machine", "libc", "expected"),
    [
        ("linux", "x86_64", "manylinux", "uv-1.0.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        ("linux", "x86_64", "musllinux", "uv-1.0.0-py3-none-musllinux_1_1_x86_64.whl"),
        ("linux", "aarch64", "manylinux", WHEELS[3]),
        ("linux", "aarch64", "musllinux", WHEELS[3]),
        ("darwin", "arm64", "", "uv-1.0.0-py3-none-macosx_11_0_arm64.whl"),
        ("darwin", "x86_64", "", "uv-1.0.0-py3-none-macosx_10_12_x86_64.whl"),
    ],
)
def test_pick_wheel_takes_the_platforms_wheel(system: str, machine: str, libc: str, expected: str) -> None:
    assert install_uv.pick_wheel(WHEELS, system, machine, libc) == expected


def test_pick_wheel_without_a_match_names_the_platform() -> None:
    with pytest.raises(ValueError, match="uv has no wheel for linux riscv64 manylinux"):
        install_uv.pick_wheel(WHEELS, "linux", "riscv64", "manylinux")


@pytest.mark.integration
def test_unknown_version_fails_naming_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, ROOT / "tools/install_uv.py", "0.0.0.1", tmp_path], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "error: installing uv 0.0.0.1 into" in result.stderr
    assert not (tmp_path / "bin").exists()


@pytest.mark.integration
def test_make_installs_the_pinned_uv_with_a_python_that_has_no_pip(tmp_path: Path) -> None:
    # This venv's python3 (first on the tests' PATH) has no pip, as Debian's python3 without python3-pip.
    assert subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0
    repo = copy_repo(tmp_path / "repo")
    version = pinned_uv_version()
    run(["make", str(repo / f".tools/uv/{version}.installed")], cwd=repo)
    installed = run([str(repo / ".tools/uv/bin/uv"), "--version"], cwd=repo)
    assert installed.stdout.split()[1] == version
