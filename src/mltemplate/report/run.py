"""Running the PR's pipeline for its report, echoing each command, and what a run leaves behind: the first stage
that failed, and committed outputs (dvc.lock, metrics.json, plots/) that are not what it reproduced."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mltemplate import git
from mltemplate.errors import CommandError
from mltemplate.paths import DVC_LOCK, METRICS_FILE, PLOTS_DIR
from mltemplate.report import schema
from mltemplate.report.schema import Failure

TAIL_LINES = 25


COMMITTED_OUTPUTS = (DVC_LOCK, METRICS_FILE, PLOTS_DIR)
"""What a PR commits after `make repro`; `make check-lock` checks the same on main."""


PIPELINE: tuple[tuple[str, ...], ...] = (("python", "-m", "mltemplate.pipeline.data"), ("dvc", "repro"))
"""What `make report` runs before comparing: get the data, then every stage that changed."""


def changed_stages() -> list[str]:
    """The stages `dvc status` reports out of date, in the pipeline's order (DVC's own index of dvc.yaml)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            status = repo.status()
            order = [stage.addressing for stage in repo.index.stages]
    except DvcException:
        return []
    return [name for name in order if name in status]


def run_pipeline(commands: Sequence[Sequence[str]] = PIPELINE) -> Failure | None:
    """Run each command, echoing its output; stop at the first that fails and describe it. A failed `dvc repro`
    names the first stage that `dvc status` still reports out of date (the ones before it were reproduced)."""
    for command in commands:
        # This interpreter's python and dvc, whatever PATH says.
        prefix = {"python": [sys.executable], "dvc": [sys.executable, "-m", "dvc"]}.get(command[0], [command[0]])
        args = [*prefix, *command[1:]]
        print(f"report: $ {' '.join(command)}", flush=True)
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        output = (result.stdout + result.stderr).rstrip()
        if output:
            print(output, flush=True)
        if result.returncode != 0:
            tail = "\n".join(output.splitlines()[-TAIL_LINES:])[-schema.MAX_TAIL :]
            stages = changed_stages() if list(command[:2]) == ["dvc", "repro"] else []
            return Failure(
                command=" ".join(command)[: schema.MAX_TEXT],
                returncode=result.returncode,
                stage=stages[0] if stages else None,
                tail=tail,
            )
    return None


def stale_outputs(paths: Sequence[Path] = COMMITTED_OUTPUTS) -> list[str]:
    """Committed outputs the pipeline changed (or wrote anew): `git status --porcelain` of `paths`."""
    result = git.git("status", "--porcelain", "--untracked-files=all", "--", *(p.as_posix() for p in paths))
    if result.returncode != 0:
        raise CommandError(f"git status failed: {result.stderr.decode(errors='replace').strip()}")
    return sorted({line[3:].split(" -> ")[-1] for line in result.stdout.decode().splitlines() if line[3:]})
