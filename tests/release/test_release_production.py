"""The release's verdict against production end to end: a real loopback OCI registry whose `production` image was
built from an earlier commit, `make compare-production` reproducing that commit's model in a fresh checkout and
comparing it with the candidate on rows neither was trained on, and `make publish` refusing a candidate that is
confidently worse unless a maintainer forces it with a recorded reason."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mltemplate.release import comparison, publish
from tests.conftest import subprocess_env
from tests.release.oci_registry import needs_registry, oci_image, oci_registry
from tests.report.test_verdict_e2e import commit, edit_params, git, least_important_alone, no_thresholds

pytestmark = [pytest.mark.integration, needs_registry]


def make(repo: Path, target: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", target, "RUN="], cwd=repo, env=subprocess_env(**env), capture_output=True, text=True, timeout=900
    )


def test_a_candidate_worse_than_production_is_refused_unless_forced_with_a_reason(
    pipeline_repo: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    edit_params(repo, no_thresholds)
    commit(repo, "release 1")
    first = git(repo, "rev-parse", "HEAD").strip()
    edit_params(repo, least_important_alone(repo))
    commit(repo, "release 2: one weak input")
    shutil.rmtree(repo / ".dvc" / "cache")  # a fresh release checkout: production's model must be reproduced
    (repo / ".venv").mkdir(exist_ok=True)
    (repo / ".venv" / ".synced").touch()
    labels = {
        publish.TITLE_LABEL: "demo",
        publish.VERSION_LABEL: "2026.01.01-010101-" + first[:7],
        publish.REVISION_LABEL: first,
        publish.KEY_LABEL: "1111111111111111",
        publish.MD5_LABEL: "1" * 32,
    }
    with oci_registry(tmp_path) as host:
        env = {"IMAGE": f"{host}/team/demo", "REGISTRY_TLS_VERIFY": "false"}
        production = oci_image(tmp_path / "production", labels)
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", production, f"docker://{env['IMAGE']}:production"],
            check=True,
            capture_output=True,
        )
        compared = make(repo, "compare-production", **env)
        assert compared.returncode == 0, compared.stderr
        found = comparison.read(repo / comparison.COMPARISON_FILE)
        assert found.commit == first
        assert "reproduced from" in found.how
        assert found.comparison.available, found.comparison.reason
        assert any(d.verdict == "worse" for d in found.comparison.differences)

        candidate = oci_image(tmp_path / "candidate", {**labels, publish.VERSION_LABEL: "2026.01.02-020202-bbbbbbb"})
        refused = make(repo, "publish", SOURCE=candidate, **env)
        assert refused.returncode != 0
        assert "confidently worse than the base" in refused.stderr
        assert "FORCE_REASON" in refused.stderr

        reason = "Production's input pipeline is retired; this model is what the new one can feed"
        forced = make(repo, "publish", SOURCE=candidate, FORCE_REASON=reason, GITHUB_ACTOR="maintainer", **env)
        assert forced.returncode == 0, forced.stderr
        notes = (repo / publish.FORCE_FILE).read_text()
        assert reason in notes
        assert "maintainer" in notes
