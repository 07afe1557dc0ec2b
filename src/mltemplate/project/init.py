"""`make init NAME=<name> [CSV=<path> TARGET=<column>] [TEMPLATE=<git url or path>]`: turn this checkout of the
template (a fork, a "Use this template" copy, a clone) into the team's project, in place. Copier renders the committed
template for the name (package, distribution, MLflow and Bento name, namespaces, README title), the render replaces
the tracked files, and .copier-answers.yml records the template version for `make update-template`. With a CSV, the
data is copied to data/raw, tracked (data.dvc) and its contract written, and params.yaml proposed from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from mltemplate import atomic
from mltemplate.dvcfiles import read_tracked, track
from mltemplate.errors import CommandError
from mltemplate.paths import DATA_DVC, PARAMS_FILE
from mltemplate.pipeline.data import accept_contract
from mltemplate.pipeline.prepare import read_raw
from mltemplate.project import names
from mltemplate.project.propose import params_text, propose
from mltemplate.project.render import (
    ANSWERS,
    TEMPLATE_MARKER,
    Answers,
    copy_files,
    files,
    git,
    remove_files,
    render,
    require_clean,
    tracked,
    write_answers,
)

RAW_DIR = Path("data/raw")


def locked_names(root: Path) -> frozenset[str]:
    """The distributions uv.lock holds: a project may not take one of their names."""
    lock = tomllib.loads((root / "uv.lock").read_text(encoding="utf-8"))
    return frozenset(str(package["name"]) for package in lock.get("package", []))


def template_source(root: Path, given: str) -> str:
    """Where later template versions come from: TEMPLATE, else the `upstream` remote (a fork), else `origin` (a
    clone of the template); empty when there is none (a copy: `make update-template TEMPLATE=...` then)."""
    if given:
        return names.check_template(given)
    remotes = git("remote", cwd=root).split()
    for remote in ("upstream", "origin"):
        if remote in remotes:
            return git("remote", "get-url", remote, cwd=root).strip()
    return ""


def rename(root: Path, name: str, source: str) -> str:
    """Replace the tracked files of `root` by the template rendered for `name`; returns the template's commit."""
    commit = git("rev-parse", "HEAD", cwd=root).strip()
    with tempfile.TemporaryDirectory(prefix="init-") as scratch:
        rendered = Path(scratch) / "project"
        render(str(root), commit, name=name, dest=rendered)
        remove_files(root, tracked(root))
        copy_files(rendered, root, files(rendered))
    write_answers(root, Answers(commit=commit, source=source, name=name))
    return commit


def adopt_csv(csv: Path, target: str, name: str) -> list[str]:
    """Copy the CSV to data/raw, track it, write its contract and the proposed params.yaml (in the working directory,
    the project's root); returns why each param was chosen."""
    raw = read_raw(csv)
    names.check_target(target, [str(c) for c in raw.columns])
    proposal = propose(raw, target)
    dest = RAW_DIR / csv.name
    if csv.resolve() != dest.resolve():
        shutil.copyfile(csv, dest)
    old = read_tracked(DATA_DVC).path
    if old != dest:
        old.unlink(missing_ok=True)  # the template's data set: git-ignored, rebuilt from scikit-learn on demand
        ignore = RAW_DIR / ".gitignore"
        lines = [line for line in ignore.read_text().splitlines() if line != f"/{old.name}"]
        atomic.write_text(ignore, "\n".join([*lines, f"/{dest.name}"]) + "\n")
    track(dest)
    accept_contract(dest)
    atomic.write_text(PARAMS_FILE, params_text(proposal, name=name, raw_path=dest, target=target))
    return proposal.reasons


def init(*, name: str, csv: str = "", target: str = "", template: str = "", root: Path | None = None) -> list[str]:
    """Make the project; returns what to tell the user. Everything is checked before anything changes."""
    root = root or Path.cwd()
    if not (root / TEMPLATE_MARKER).is_file():
        raise CommandError(
            f"this checkout is already a project made from the template (it has {ANSWERS}, not {TEMPLATE_MARKER}): "
            "`make update-template` brings in the template's later changes"
        )
    names.check_name(name, taken=locked_names(root))
    if bool(csv) != bool(target):
        raise names.ValueRefused("give CSV and TARGET together (the data file and its target column), or neither")
    data = names.check_csv(csv) if csv else None
    if data is not None:
        names.check_target(target, [str(c) for c in read_raw(data).columns])
    require_clean(root)
    source = template_source(root, template)
    commit = rename(root, name, source)
    package = names.package_of(name)
    said = [f"init: {root.name} is now the project {name} (package {package}), template {commit[:12]}"]
    if data is not None:
        # The renamed package does the rest, from src/ (this process's modules are the template's, now gone).
        child = [sys.executable, "-m", f"{package}.project", "data", "--csv", str(data.resolve()), "--target", target]
        env = {**os.environ, "PYTHONPATH": str(root / "src")}
        done = subprocess.run([*child, "--name", name], cwd=root, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CommandError(f"the project is renamed, but adopting {csv} failed: {done.stderr.strip()}")
        said += done.stdout.splitlines()
    if not source:
        said.append("init: no template remote found: give TEMPLATE=<git url or path> to `make update-template`")
    return [*said, "init: next: make run, review `git status`, commit everything (data.dvc too), `dvc push` the data"]
