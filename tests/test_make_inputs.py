"""Values from outside never become code: the recipes read TO, VERSION, ENV, IMAGE, ... as "$${NAME}", so make never
expands them and the shell passes them on as one argument. Hostile values (quotes, `$(shell ...)`, backticks,
newlines) reach the program as text, which refuses them, and nothing else runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.release import rollback
from tests.conftest import ROOT, subprocess_env

HOSTILE = ['"; touch {pwned}; "', "$(shell touch {pwned})", "`touch {pwned}`", "$$(touch {pwned})", "x\ntouch {pwned}"]
IDS = ["quotes", "make-shell", "backticks", "dollar-paren", "newline"]
TARGETS = [  # target, the variable a workflow or a user sets, the module that gets it
    ("rollback", "TO", "mltemplate.release.rollback"),
    ("promote", "VERSION", "mltemplate.release.publish"),
    ("deploy", "ENV", "mltemplate.release.deploy"),
    ("pin", "IMAGE", "mltemplate.release.deploy"),
    ("feedback", "FILE", "mltemplate.monitoring"),
    ("comment", "ARTIFACT", "mltemplate.report.comment"),
    ("publish", "SOURCE", "mltemplate.release.publish"),
]


def make(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", *args], cwd=ROOT, env=subprocess_env(**env), capture_output=True, text=True)


@pytest.mark.parametrize("hostile", HOSTILE, ids=IDS)
@pytest.mark.parametrize(("target", "name", "module"), TARGETS, ids=[t[0] for t in TARGETS])
def test_a_hostile_value_in_the_environment_reaches_the_program_as_one_argument(
    target: str, name: str, module: str, hostile: str, tmp_path: Path
) -> None:
    pwned = tmp_path / "pwned"
    value = hostile.format(pwned=pwned)
    # RUN=echo prints the command the recipe would run instead of running it.
    result = make(target, "RUN=echo", **{name: value, "ENV": "staging"} if name != "ENV" else {name: value})
    assert not pwned.exists(), result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    assert f"python -m {module}" in result.stdout
    assert value in result.stdout


@pytest.mark.parametrize("hostile", HOSTILE, ids=IDS)
def test_make_n_rollback_with_a_hostile_command_line_value_runs_nothing(hostile: str, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    result = make("-n", "rollback", f"TO={hostile.format(pwned=pwned)}")
    assert result.returncode == 0, result.stderr
    assert not pwned.exists()
    assert '"${TO:-previous}"' in result.stdout


@pytest.mark.parametrize("hostile", HOSTILE, ids=IDS)
def test_a_hostile_rollback_target_is_an_unknown_release(hostile: str) -> None:
    with pytest.raises(CommandError, match="unknown release"):
        rollback.choose(hostile, ["2026.11.23-203152-667333a"], "2026.11.23-203152-667333a")
