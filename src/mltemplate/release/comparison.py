"""The release candidate (this checkout's model) against the model of the release it would replace, on rows neither
was trained on (mltemplate.comparison): the production release's commit is reproduced (mltemplate.reproduce), the
comparison written to build/comparison.json, which the model card shows and `make publish` judges with the gate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltemplate import atomic, git, reproduce
from mltemplate.comparison import Comparison, unavailable
from mltemplate.errors import CommandError
from mltemplate.params import Params
from mltemplate.same_rows import compare_models

COMPARISON_FILE = Path("build/comparison.json")


@dataclass(frozen=True)
class AgainstProduction:
    """The candidate against release `version` (built from `commit`); `how` says how its model was had."""

    version: str | None
    commit: str | None
    how: str
    comparison: Comparison

    def to_json(self) -> str:
        raw: dict[str, Any] = {"version": self.version, "commit": self.commit, "how": self.how}
        return json.dumps({**raw, "comparison": self.comparison.to_dict()}, indent=1) + "\n"


def nothing_in_production() -> AgainstProduction:
    return AgainstProduction(None, None, "", unavailable("no release is in production yet: this is the first"))


def against(version: str, commit: str, params: Params, *, repo: Path = Path()) -> AgainstProduction:
    """Reproduce `commit` (the production release's) and compare this checkout's model with it."""
    commit = commit.removesuffix("-dirty")
    if not git.is_commit(commit, repo):
        reason = f"production's commit {commit[:12]} is not in this checkout (check out the full history)"
        return AgainstProduction(version, commit, "", unavailable(reason))
    try:
        with reproduce.checkout(commit, repo=repo) as production:
            found = compare_models(production.root, repo, slices=params.evaluate.slices, seed=params.seed)
            return AgainstProduction(version, commit, production.how, found)
    except reproduce.ReproduceError as error:
        return AgainstProduction(version, commit, "", unavailable(f"the production model could not be had: {error}"))


def write(found: AgainstProduction, path: Path = COMPARISON_FILE) -> None:
    atomic.write_text(path, found.to_json())


def read(path: Path = COMPARISON_FILE) -> AgainstProduction:
    """build/comparison.json as `make compare-production` wrote it."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return AgainstProduction(raw["version"], raw["commit"], raw["how"], Comparison.from_dict(raw["comparison"]))
    except FileNotFoundError:
        raise CommandError(f"{path} not found: run `make compare-production` first") from None
    except (ValueError, KeyError, TypeError) as error:
        raise CommandError(f"{path} is not a comparison `make compare-production` wrote ({error})") from None
