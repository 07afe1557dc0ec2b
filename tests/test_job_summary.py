"""tests/job_summary.py: a pytest run in GitHub Actions writes its counts and failures to the job summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, subprocess_env


def test_job_summary_lists_counts_and_failed_tests(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text("def test_ok():\n    pass\n\ndef test_bad():\n    assert False\n")
    summary = tmp_path / "summary.md"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.job_summary", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=ROOT,
        env=subprocess_env(GITHUB_STEP_SUMMARY=str(summary), PYTHONPATH=str(ROOT), PYTEST_ADDOPTS="-n 2"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("### Tests: ❌ failed\n")
    assert "| 1 | 1 | 0 | 0 | 0 | 0 |" in text
    assert "test_sample.py::test_bad`" in text
    assert "test_ok" not in text
