"""The retrain's handover to its pull request, in the standard library only: only data files pass, at allowed
paths, and the checkout they are put onto may change in those paths only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mltemplate.monitoring import handoff
from tests.conftest import ROOT


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    return subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with the files a retrain changes, and code beside them."""
    root = tmp_path / "repo"
    for path in ("data.dvc", "dvc.lock", "metrics.json", "plots/roc.json", "src/app.py", ".gitignore"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("/build/\n" if path == ".gitignore" else f"{path} v1\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main")
    return root


def hand_over(repo: Path, files: dict[str, str], *, passed: bool = True) -> Path:
    out = repo / "build" / "retrain"
    out.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        (out / "files" / path).parent.mkdir(parents=True, exist_ok=True)
        (out / "files" / path).write_text(text)
    (out / "summary.md").write_text("## Retrain\n")
    (out / "summary.json").write_text(json.dumps({"passed": passed}))
    return out


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The module as the pull-request job runs it: python without site-packages, the source on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-S", "-m", "mltemplate.monitoring.handoff", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.dvc", True),
        ("reference.dvc", True),
        ("dvc.lock", True),
        ("metrics.json", True),
        ("examples/predict.json", True),
        ("plots/roc.json", True),
        ("plots/roc.png", True),
        ("plots/sub/roc.json", False),
        ("plots/roc.sh", False),
        ("params.yaml", False),
        (".github/workflows/ci.yml", False),
        ("src/mltemplate/serving/service.py", False),
        ("data/raw/breast_cancer.csv", False),
    ],
)
def test_only_the_data_files_may_change(path: str, expected: bool) -> None:
    assert handoff.allowed(path) is expected


def test_collect_hands_over_only_the_changed_data_files(repo: Path) -> None:
    (repo / "data.dvc").write_text("data.dvc v2\n")
    (repo / "plots/new.png").write_bytes(b"\x89PNG")
    (repo / "src/app.py").write_text("something the retrain's code should not have written\n")
    out = repo / "build" / "retrain"
    assert handoff.collect(repo, out) == ["data.dvc", "plots/new.png"]
    assert sorted(p.relative_to(out / "files").as_posix() for p in (out / "files").rglob("*") if p.is_file()) == [
        "data.dvc",
        "plots/new.png",
    ]


def test_the_pull_request_job_applies_the_data_files_and_lists_them(repo: Path) -> None:
    out = hand_over(repo, {"data.dvc": "data.dvc v2\n", "plots/roc.json": "plots/roc.json v2\n"})
    result = cli(repo, "apply", "build/retrain")
    assert result.returncode == 0, result.stderr
    assert (out / "paths.txt").read_text().splitlines() == ["data.dvc", "plots/roc.json"]
    assert git(repo, "status", "--porcelain").splitlines() == [" M data.dvc", " M plots/roc.json"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"src/app.py": "import os\n"}, "src/ is not a folder"),
        ({"params.yaml": "seed: 1\n"}, "params.yaml is not a data file"),
        ({".github/workflows/x.yml": "on: push\n"}, ".github/ is not a folder"),
        ({"data.dvc": "x" * (handoff.MAX_BYTES + 1)}, "data.dvc is"),
    ],
)
def test_anything_else_handed_over_is_refused_and_nothing_applied(
    repo: Path, files: dict[str, str], message: str
) -> None:
    hand_over(repo, {"dvc.lock": "dvc.lock v2\n", **files})
    result = cli(repo, "apply", "build/retrain")
    assert result.returncode == 1
    assert message in result.stderr
    assert git(repo, "status", "--porcelain") == ""


def test_a_link_is_refused(repo: Path) -> None:
    out = hand_over(repo, {})
    (out / "files" / "plots").mkdir(parents=True)
    (out / "files" / "plots" / "roc.json").symlink_to(repo / "src" / "app.py")
    result = cli(repo, "apply", "build/retrain")
    assert result.returncode == 1
    assert "plots/roc.json is not a regular file" in result.stderr


def test_a_checkout_changed_elsewhere_is_refused(repo: Path) -> None:
    hand_over(repo, {"data.dvc": "data.dvc v2\n"})
    (repo / "src/app.py").write_text("changed by someone\n")
    result = cli(repo, "apply", "build/retrain")
    assert result.returncode == 1
    assert "changed outside the handed files: ['src/app.py']" in result.stderr


@pytest.mark.parametrize(("passed", "status", "word"), [(True, 0, "passes"), (False, 1, "FAILS")])
def test_the_title_and_the_verdict_follow_the_summary(repo: Path, passed: bool, status: int, word: str) -> None:
    hand_over(repo, {"data.dvc": "v2\n"}, passed=passed)
    assert word in cli(repo, "title", "build/retrain").stdout
    assert cli(repo, "verdict", "build/retrain").returncode == status
