"""`python3 -m mltemplate.github <command>`: the workflow steps that talk to GitHub (each a make target).

status FILE           post the commit status FILE holds on HEAD_SHA            (pr-comment.yml, make gate-status)
pr-head FILE          output number=<PR> if the PR in FILE is still at HEAD_SHA (pr-comment.yml, make pr-head)
alert-issues DIR      open, comment on or close the alert issues of DIR/alerts.json (monitor.yml, make alert-issues)
retrain-pr DIR        commit DIR/paths.txt's files on retrain/<run id>, push, open the PR (retrain.yml, make retrain-pr)
reviewers ENV         fail unless the environment ENV has required reviewers     (release/rollback, make reviewers)
release FILE          create the GitHub Release VERSION with FILE as its notes   (release.yml, make github-release)
check-input           fail unless INPUT_VALUE matches all of INPUT_PATTERN       (make check-input)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mltemplate.errors import run
from mltemplate.github import alerts, comment, inputs, release, retrain
from mltemplate.github.client import Client


def _alert_issues(directory: Path) -> None:
    env = os.environ
    base = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{env.get('GITHUB_REPOSITORY', '')}"
    urls = {
        "run": f"{base}/actions/runs/{env.get('GITHUB_RUN_ID', '')}",
        "retrain": f"{base}/actions/workflows/retrain.yml",
    }
    report = directory / "report.md"
    summary = report.read_text(encoding="utf-8") if report.is_file() else "(no report.md)"
    for line in alerts.update(Client.from_env(), alerts.read_alerts(directory / "alerts.json"), summary, urls):
        print(f"github: {line}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python3 -m mltemplate.github", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status").add_argument("file", type=Path)
    commands.add_parser("pr-head").add_argument("file", type=Path)
    commands.add_parser("alert-issues").add_argument("directory", type=Path)
    retraining = commands.add_parser("retrain-pr")
    retraining.add_argument("handoff", type=Path)
    retraining.add_argument("--title", default=retrain.TITLE)
    commands.add_parser("reviewers").add_argument("environment")
    releasing = commands.add_parser("release")
    releasing.add_argument("notes", type=Path)
    releasing.add_argument("--prepend", type=Path, help="notes to put first when the file exists (build/forced.md)")
    commands.add_parser("check-input")
    args = parser.parse_args(argv)
    env = os.environ
    if args.command == "check-input":
        inputs.check(env.get("INPUT_NAME", "input"), env.get("INPUT_PATTERN", ""), env.get("INPUT_VALUE", ""))
    elif args.command == "status":
        comment.post_status(Client.from_env(), env.get("HEAD_SHA", ""), args.file)
    elif args.command == "pr-head":
        comment.check_head(Client.from_env(), args.file, env.get("HEAD_SHA", ""))
    elif args.command == "alert-issues":
        _alert_issues(args.directory)
    elif args.command == "retrain-pr":
        retrain.open_pull_request(Client.from_env(), args.handoff, args.title)
    elif args.command == "reviewers":
        release.reviewers(Client.from_env(), args.environment)
    else:
        release.create_release(
            Client.from_env(),
            env.get("VERSION", ""),
            args.notes,
            target=env.get("GITHUB_SHA", ""),
            prepend=args.prepend,
        )


if __name__ == "__main__":
    sys.exit(run(main))
