"""A team's own project from the template, as a team would make one: `make init` in a "Use this template" copy (no
shared history) with a CSV unlike the bundled data, then `make run`, `make lint` and the tests there, and template v2
merged in by `make update-template` over the team's own changes; and a fork (shared history) whose update conflicts
only on the line both sides changed. Template-only: copier.yml leaves this test out of the projects it makes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, copy_repo, subprocess_env

pytestmark = [pytest.mark.integration, pytest.mark.template, pytest.mark.timeout(3600)]


def make(repo: Path, *args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in `repo` with the project's own environment (its .venv, made by `make setup`)."""
    environment = {key: value for key, value in subprocess_env(**env).items() if key != "VIRTUAL_ENV"}
    result = subprocess.run(["make", *args], cwd=repo, env=environment, capture_output=True, text=True)
    if ok:
        assert result.returncode == 0, f"make {' '.join(args)}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=team", "-c", "user.email=team@example.com"]
    return subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def churn_csv(path: Path, *, rows: int = 900, seed: int = 11) -> Path:
    """A hidden-like CSV: an id, numbers with gaps, categories with gaps, string labels, the positive class rarer."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"cus-{seed}-{i:05d}" for i in range(rows)],
            "tenure_months": rng.integers(1, 72, rows),
            "monthly_fee": rng.normal(60, 20, rows).round(2),
            "support_calls": rng.poisson(1.5, rows),
            "plan": rng.choice(["basic", "plus", "premium"], rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    risk = -0.05 * frame["tenure_months"] + 0.02 * frame["monthly_fee"] + 0.6 * frame["support_calls"]
    risk += 0.9 * (frame["plan"] == "basic") + rng.normal(0, 1, rows)
    frame["status"] = np.where(risk > 1.5, "churned", "stayed")
    frame.loc[rng.choice(rows, rows // 20, replace=False), "monthly_fee"] = np.nan
    frame.loc[rng.choice(rows, rows // 25, replace=False), "plan"] = np.nan
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def mentions_of_the_template(repo: Path) -> list[str]:
    """Files (and answers lines) that still say `mltemplate`, but for the answers file's note of the template."""
    found = []
    for name in git(repo, "ls-files", "-co", "--exclude-standard").splitlines():
        try:
            text = (repo / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        lines = [line for line in text.splitlines() if not line.startswith("_src_path:")]
        if re.search("mltemplate", "\n".join(lines), flags=re.IGNORECASE) or "mltemplate" in name.lower():
            found.append(name)
    return found


def release_v2(template: Path) -> None:
    """Template v2: a source file, a workflow and the README change."""
    params = template / "src/mltemplate/params.py"
    params.write_text(params.read_text().replace('"""Read and validate params.yaml."""', '"""Read params.yaml, v2."""'))
    ci = template / ".github/workflows/ci.yml"
    ci.write_text(re.sub(r"^name: .*$", "name: CI (template v2)", ci.read_text(), count=1, flags=re.MULTILINE))
    readme = template / "README.md"
    readme.write_text(readme.read_text() + "\n## Template v2\n\nWhat changed in v2.\n")
    git(template, "commit", "-qam", "template v2")


def checkout(repo: Path) -> Path:
    """A checkout with this one's pinned uv (the hooks call .tools/uv/bin/uv; `make setup` would download it)."""
    (repo / ".tools").symlink_to(ROOT / ".tools", target_is_directory=True)
    with (repo / ".git/info/exclude").open("a") as exclude:
        exclude.write("/.tools\n")  # .gitignore's `/.tools/` matches a folder, not a link to one
    return repo


def test_a_copy_becomes_churn_model_runs_its_checks_and_takes_template_v2_without_conflict(tmp_path: Path) -> None:
    template = copy_repo(tmp_path / "template")
    project = checkout(copy_repo(tmp_path / "churn-model"))  # "Use this template": the same files, no shared history
    csv = churn_csv(tmp_path / "exports/churn.csv")
    make(project, "setup")
    init = make(project, "init", "NAME=churn-model", f"CSV={csv}", "TARGET=status", f"TEMPLATE={template}")
    assert "positive class 'churned'" in init.stdout
    assert mentions_of_the_template(project) == []
    params = (project / "params.yaml").read_text()
    assert "categorical: [plan, region]" in params
    assert "drop: [customer_id]" in params
    assert (project / "src/churn_model/pipeline/train.py").is_file()
    make(project, "run")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "Start churn-model from the template")
    make(project, "lint")
    make(project, "test-fast", PYTEST_ADDOPTS="-x -q -p no:cacheprovider")
    make(project, "test-project", PYTEST_ADDOPTS="-x -q -p no:cacheprovider")

    # The team's own changes: params, data, one source file; outputs refreshed and committed.
    (project / "params.yaml").write_text(params.replace("test_size: 0.25", "test_size: 0.3"))
    churn_csv(project / "data/raw/churn.csv", rows=1000, seed=12)
    subprocess.run(
        [project / ".venv/bin/python", "-m", "churn_model.pipeline.data", "track", "data/raw/churn.csv"],
        cwd=project,
        env=subprocess_env(),
        check=True,
        capture_output=True,
    )
    train = project / "src/churn_model/pipeline/train.py"
    train.write_text(train.read_text().replace('"""Stage `train`:', '"""Stage `train` (the churn team\'s):', 1))
    make(project, "run")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "More data, a larger test split")
    ours = {name: (project / name).read_text() for name in ("params.yaml", "data.dvc", "dvc.lock", "metrics.json")}

    release_v2(template)
    update = make(project, "update-template")
    assert "3 files changed" in update.stdout, update.stdout
    assert "CI (template v2)" in (project / ".github/workflows/ci.yml").read_text()
    assert "## Template v2" in (project / "README.md").read_text()
    assert '"""Read params.yaml, v2."""' in (project / "src/churn_model/params.py").read_text()
    assert "(the churn team's)" in train.read_text()
    assert {name: (project / name).read_text() for name in ours} == ours
    assert "_commit: " + git(template, "rev-parse", "HEAD").strip() in (project / ".copier-answers.yml").read_text()
    make(project, "test-fast", PYTEST_ADDOPTS="-x -q -p no:cacheprovider")
    # The update is left uncommitted for the team to review: another one waits until it is committed.
    assert "uncommitted changes" in make(project, "update-template", ok=False).stderr
    git(project, "add", "-A")
    git(project, "commit", "-qm", "Template v2")
    assert (
        make(project, "update-template")
        .stdout.strip()
        .endswith("already at template version " + git(template, "rev-parse", "--short=12", "HEAD").strip())
    )


def test_a_fork_updates_over_shared_history_and_conflicts_only_where_both_changed_a_line(tmp_path: Path) -> None:
    template = copy_repo(tmp_path / "template")
    project = tmp_path / "fraud-model"
    subprocess.run(["git", "clone", "-q", str(template), str(project)], check=True, capture_output=True)
    checkout(project)
    make(project, "setup")
    make(project, "init", "NAME=fraud-model")  # the template is the fork's origin
    assert "name: fraud-model" in (project / "params.yaml").read_text()
    git(project, "add", "-A")
    git(project, "commit", "-qm", "Start fraud-model")
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("# fraud-model\n", "# fraud-model\n\nOur fraud model.\n", 1))
    git(project, "commit", "-qam", "README: what the project is")

    release_v2(template)
    theirs = template / "README.md"
    theirs.write_text(theirs.read_text().replace("# ML CI/CD template\n", "# ML CI/CD template\n\nNew intro.\n", 1))
    git(template, "commit", "-qam", "README: a new intro")
    update = make(project, "update-template", ok=False)
    assert update.returncode != 0
    assert "conflicts where the template and the project changed the same lines: README.md" in update.stderr
    text = readme.read_text()
    assert "<<<<<<<" in text
    assert "Our fraud model." in text
    assert "New intro." in text
    assert "## Template v2" in text  # the rest of the file merged
    assert "CI (template v2)" in (project / ".github/workflows/ci.yml").read_text()
