"""`python -m mltemplate.project init|update|lane`: what `make init`, `make update-template` and `make lane` run
(`data` is init's second half, run by the renamed package). `lane` needs only the standard library and git, so CI
can ask it before installing anything."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from mltemplate.errors import CommandError
from mltemplate.project import owned


def changed_files(base: str) -> list[str] | None:
    """The paths changed between `base` and HEAD (since their merge base); None when `base` is unknown here."""
    diff = ["git", "diff", "--name-only", "--end-of-options", f"{base}...HEAD"]
    result = subprocess.run(diff, capture_output=True, text=True, check=False)
    return result.stdout.splitlines() if result.returncode == 0 else None


def lane(base: str) -> str:
    changed = changed_files(base) if base else None
    chosen = owned.lane(changed) if changed is not None else "template"
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with Path(output).open("a", encoding="utf-8") as handle:
            handle.write(f"lane={chosen}\n")
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.project", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    init_cmd = sub.add_parser("init", help="turn this checkout of the template into the team's project")
    data_cmd = sub.add_parser("data", help="init's second half: copy, track and describe the CSV, propose params")
    for cmd in (init_cmd, data_cmd):
        cmd.add_argument("--name", required=True)
        cmd.add_argument("--csv", default="")
        cmd.add_argument("--target", default="")
    init_cmd.add_argument("--template", default="")
    update_cmd = sub.add_parser("update", help="merge the template's later changes into this project")
    update_cmd.add_argument("--template", default="")
    update_cmd.add_argument("--version", default="")
    lane_cmd = sub.add_parser("lane", help="print `project` when the changes since BASE are the team's only")
    lane_cmd.add_argument("--base", default="")
    args = parser.parse_args(argv)
    if args.command == "init":
        from mltemplate.project.init import init

        print("\n".join(init(name=args.name, csv=args.csv, target=args.target, template=args.template)))
    elif args.command == "data":
        from mltemplate.project.init import adopt_csv
        from mltemplate.project.names import check_csv

        print("\n".join(f"init: {reason}" for reason in adopt_csv(check_csv(args.csv), args.target, args.name)))
    elif args.command == "update":
        from mltemplate.project.update import update

        done = update(template=args.template, version=args.version)
        if done.old == done.new:
            print(f"update-template: already at template version {done.new[:12]}")
            return
        print(f"update-template: {done.old[:12]} -> {done.new[:12]}, {len(done.changed)} files changed")
        if done.conflicts:
            raise CommandError(
                f"conflicts where the template and the project changed the same lines: {', '.join(done.conflicts)}; "
                "resolve the <<<<<<< markers, then make run and commit"
            )
        print("update-template: review `git diff`, then make run (dvc.lock follows the new code) and commit")
    else:
        print(lane(args.base))


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
