"""`make verdict`: the PR's verdict computed by the base's own code. Run by the trusted side (pr-comment.yml's verdict
job: the default branch's checkout, no write permission) for the PR's head commit (HEAD_SHA). It reads the PR's files
as data (`git show <head>:<path>`), never runs them:

- a PR that changes only params, data pointers and the outputs they regenerate (the data scientist's usual PR,
  forks included) gets its pipeline run here, by this checkout's code on the PR's params.yaml, data.dvc and data
  contract, compared with the base on the same rows, and its committed outputs checked against what that run
  reproduced: the report it writes (verdict/report.json, `trust: trusted`) is what the comment and the status show;
- a PR that changes anything else (code, the pipeline, the Makefile, workflows, lockfiles) gets a report with no
  numbers that lists those files: the comment then shows the PR's own, self-reported numbers under a warning, and
  the status never turns `success` on them (a maintainer's review decides)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from mltemplate import atomic, git
from mltemplate.errors import CommandError
from mltemplate.paths import CONTRACT_FILE, DATA_DVC, DVC_LOCK, EXAMPLE_FILE, METRICS_FILE, PARAMS_FILE, PLOTS_DIR
from mltemplate.report import artifact, schema
from mltemplate.report.pr import build, finish
from mltemplate.report.schema import Report, Side

VERDICT_DIR = Path("verdict")
INPUTS = (PARAMS_FILE, DATA_DVC, CONTRACT_FILE)
"""What a params-only PR may change as data: the trusted run takes these from the PR."""
OUTPUTS = (DVC_LOCK, METRICS_FILE, EXAMPLE_FILE)
"""What such a PR commits after `make repro` (with every file under plots/): checked against the trusted run."""
SHA = re.compile(r"^[0-9a-f]{40}$")


def _git(*args: str) -> str:
    found = git.git(*args)
    if found.returncode != 0:
        raise CommandError(f"git {' '.join(args)} failed: {found.stderr.decode(errors='replace').strip()}")
    return found.stdout.decode()


def changed_files(base: str, head: str) -> list[str]:
    """The files `head` changes against its merge base with `base`."""
    return sorted(filter(None, _git("diff", "--name-only", "--no-renames", f"{base}...{head}").splitlines()))


def code_changes(files: Sequence[str]) -> list[str]:
    """The changed files that are not params, data pointers or pipeline outputs."""
    data = {path.as_posix() for path in (*INPUTS, *OUTPUTS)}
    return [name for name in files if name not in data and not name.startswith(f"{PLOTS_DIR.as_posix()}/")]


@contextlib.contextmanager
def inputs_of(head: str) -> Iterator[None]:
    """The PR's params.yaml, data.dvc and data contract in place of this checkout's (as data: nothing of the PR
    runs), and this checkout's back after, so that its policy is what `make comment` applies; a file the PR does
    not have stays this checkout's."""
    saved = {path: path.read_bytes() for path in INPUTS if path.is_file()}
    try:
        for path in INPUTS:
            found = git.show(head, path)
            if found is not None:
                atomic.write_bytes(path, found)
        yield
    finally:
        for path, data in saved.items():
            atomic.write_bytes(path, data)


def stale_against(head: str) -> list[str]:
    """The outputs the PR committed that are not what the trusted run reproduced (or that it wrote anew)."""
    committed = set(filter(None, _git("ls-tree", "-r", "--name-only", head, "--", PLOTS_DIR.as_posix()).splitlines()))
    here = {path.as_posix() for path in PLOTS_DIR.glob("*") if path.is_file()}
    stale = []
    for name in sorted({path.as_posix() for path in OUTPUTS} | committed | here):
        path = Path(name)
        ours = path.read_bytes() if path.is_file() else None
        if git.show(head, path) != ours:
            stale.append(name)
    return stale


def not_run(head: str, base: str, changes: list[str]) -> Report:
    """The report of a PR whose code this job will not run: the files that make it so, no numbers."""
    label = base.removeprefix("origin/")
    return Report(
        head_sha=head,
        base_ref=label[: schema.MAX_TEXT],
        base=Side(label=label[: schema.MAX_TEXT]),
        pr=Side(label="PR"),
        trust="trusted",
        code_changes=[name[: schema.MAX_TEXT] for name in changes[: schema.MAX_ENTRIES]],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.report.trusted", description=__doc__)
    parser.add_argument("--base", default=os.environ.get("BASE") or "HEAD", help="the base commit (default HEAD)")
    parser.add_argument("--head", default=os.environ.get("HEAD_SHA", ""), help="the PR's head commit (HEAD_SHA)")
    parser.add_argument("--out", type=Path, default=VERDICT_DIR, help=f"output directory (default: {VERDICT_DIR})")
    args = parser.parse_args(argv)
    if not SHA.match(args.head):
        raise CommandError(f"HEAD_SHA must be a full commit sha (40 hex digits), got {args.head!r}")
    if not git.is_commit(args.head):
        raise CommandError(f"{args.head} is not here: fetch it first (git fetch origin {args.head})")
    base = _git("rev-parse", "--verify", f"{args.base}^{{commit}}").strip()
    label = f"{args.base} ({base[:7]})" if args.base != base else base[:12]
    changes = code_changes(changed_files(base, args.head))
    if changes:
        report = not_run(args.head, label, changes)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / artifact.DATA_FILE).write_text(report.to_json(), encoding="utf-8")
        print(f"verdict: the PR changes {len(changes)} file(s) beyond params and data; its own numbers are shown")
        return
    with inputs_of(args.head):
        stale = functools.partial(stale_against, args.head)  # called by build, after the trusted run
        built = build(base, pr_number=None, head_sha=args.head, stale=stale, trust="trusted", label=label)
    finish(built, args.out, base_ref=base)


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
