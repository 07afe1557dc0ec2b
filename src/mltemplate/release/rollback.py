"""Roll production back in one step: `python -m mltemplate.release.rollback previous|<version>` re-points the image's
`production` tag (and, with an MLflow server, the `champion` alias) at an earlier release, and records who did it and
when (printed, in build/deployment.json, and in the GitHub job summary). An unknown version moves nothing."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from mltemplate import atomic
from mltemplate.errors import CommandError, run
from mltemplate.release import container, oci
from mltemplate.release.publish import PRODUCTION, TITLE_LABEL, VERSION_LABEL, versions

PREVIOUS = "previous"
RECORD_FILE = Path("build/deployment.json")


def choose(target: str, known: list[str], current: str | None) -> str:
    """The release to roll back to: `previous` = the newest release older than `current`, or a named one."""
    if target == PREVIOUS:
        if current is None:
            raise CommandError(f"nothing to roll back: no release is tagged {PRODUCTION} yet")
        older = [version for version in known if version < current]
        if not older:
            raise CommandError(f"{PRODUCTION} is {current}, the oldest release: there is no previous one")
        return older[-1]
    if target not in known:
        shown = ", ".join(known[-5:]) or "none"
        raise CommandError(f"unknown release {target!r}: expected 'previous' or a released version (newest: {shown})")
    return target


@dataclass(frozen=True)
class Deployment:
    """One move of the production tag: what ran before, what runs now, who moved it and when."""

    action: str
    image: str
    version: str
    digest: str
    replaced: str | None
    registry_version: str | None
    actor: str
    at: str

    def to_markdown(self) -> str:
        champion = f", MLflow champion -> version {self.registry_version}" if self.registry_version else ""
        return (
            f"**{self.action}**: `{self.image}:{PRODUCTION}` -> `{self.version}` (`{self.digest}`), was "
            f"`{self.replaced or 'unset'}`{champion}; by {self.actor} at {self.at}\n"
        )


def rollback(target: str, env: Mapping[str, str], *, now: dt.datetime | None = None) -> Deployment:
    registry = oci.Registry(container.image_name(env), env)
    production = registry.inspect(PRODUCTION)
    current = production.labels.get(VERSION_LABEL) if production else None
    version = choose(target, versions(registry.tags()), current)
    found = registry.inspect(version)
    if found is None:  # listed a moment ago; deleted since
        raise CommandError(f"{registry.image}:{version} disappeared from the registry")
    at = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    actor = env.get("GITHUB_ACTOR") or env.get("USER") or "unknown"
    registered = None
    if env.get("MLFLOW_TRACKING_URI"):
        from mltemplate.registry import aliases

        try:
            registered = aliases.roll_back_champion(
                env["MLFLOW_TRACKING_URI"], found.labels.get(TITLE_LABEL, ""), version, actor=actor, at=at
            )
        except LookupError as error:
            raise CommandError(f"{error}; {PRODUCTION} was not moved") from None
    registry.retag(found.digest, PRODUCTION)
    return Deployment("rollback", registry.image, version, found.digest, current, registered, actor, at)


def record(deployment: Deployment, env: Mapping[str, str], path: Path = RECORD_FILE) -> None:
    atomic.write_text(path, json.dumps(asdict(deployment), indent=2, sort_keys=True) + "\n")
    if env.get("GITHUB_STEP_SUMMARY"):
        with Path(env["GITHUB_STEP_SUMMARY"]).open("a", encoding="utf-8") as handle:
            handle.write(deployment.to_markdown())
    print(f"rollback: {deployment.to_markdown()}", end="")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.release.rollback", description=__doc__)
    parser.add_argument("target", help="'previous' or a release version (an image tag like 2026.11.23-203152-667333a)")
    args = parser.parse_args(argv)
    record(rollback(args.target.strip(), os.environ), os.environ)


if __name__ == "__main__":
    sys.exit(run(main))
