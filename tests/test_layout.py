"""The package's shape: core at the top, one folder per job, imports that point one way and never back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

import mltemplate

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = Path(mltemplate.__file__).parent
JOBS = ("pipeline", "registry", "serving", "release", "report", "monitoring", "batch", "github", "project")
ALLOWED = {
    # job -> the jobs it may import (core is always allowed); everything else would point back up the picture
    "pipeline": {"registry"},
    "registry": set(),
    "serving": {"monitoring"},
    "release": {"registry"},
    "report": {"registry"},  # the PR's MLflow run gets its comparison with the base
    "monitoring": set(),
    "project": {"pipeline"},  # make init tracks the team's CSV and writes its contract as `make contract` does
    "batch": set(),
    "github": set(),  # the workflows' GitHub calls: standard library and core errors only (tests/github)
}
SERVING_NEEDS_OF_MONITORING = {
    "mltemplate.monitoring.log",
    "mltemplate.monitoring.spool",
    "mltemplate.monitoring.store",
    "mltemplate.monitoring.migrations",
    "mltemplate.monitoring.codec",
    "mltemplate.monitoring.feedback",
    "mltemplate.monitoring.labels",
}
"""Exactly the monitoring modules the service reaches (they go into the Bento; drift, reports and retraining don't)."""
MLFLOW_ONLY = "mltemplate.registry"
"""Records runs, writes no pipeline output: left out of the stages' dependencies on purpose (see dvc.yaml)."""


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, anywhere in its body (lazy imports count too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(known[name].read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in out if m in known and m != name}


def job(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in JOBS) else None


def closure(start: str, known: dict[str, Path], *, skip: str = MLFLOW_ONLY) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name.startswith(skip):
            continue
        seen.add(name)
        todo += imports(name, known)
    return seen


def test_top_level_holds_only_core_modules_and_the_job_folders() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= set(JOBS) | {"monitoring"}
    for folder in folders:
        assert ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text())), folder


def test_core_imports_no_job() -> None:
    known = modules()
    core = [name for name in known if job(name) is None]
    leaks = {name: sorted(m for m in imports(name, known) if job(m)) for name in core}
    assert {k: v for k, v in leaks.items() if v} == {}


def test_jobs_import_only_what_lies_below_them() -> None:
    known = modules()
    wrong = {}
    for name in known:
        own = job(name)
        if own is None or own not in ALLOWED:
            continue
        bad = sorted(m for m in imports(name, known) if job(m) not in {None, own, *ALLOWED[own]})
        if bad:
            wrong[name] = bad
    assert wrong == {}


def test_no_module_imports_one_that_imports_it_back() -> None:
    known = modules()
    cycles = sorted(
        (name, other)
        for name in known
        for other in imports(name, known)
        if name in closure(other, known, skip="\0") and known[name].name != "__init__.py"
    )
    assert cycles == []


def test_serving_reaches_exactly_the_monitoring_modules_the_bento_ships() -> None:
    known = modules()
    reached = {m for name in known if job(name) == "serving" for m in closure(name, known) if job(m) == "monitoring"}
    assert reached - {"mltemplate.monitoring"} == SERVING_NEEDS_OF_MONITORING


def test_the_service_never_imports_dask() -> None:
    """Dask is the batch job's engine; the service's workers should not pay for importing it."""
    known = modules()
    for name in closure("mltemplate.serving.service", known):
        tree = ast.parse(known[name].read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[0] in {"dask", "distributed"}}, name


def test_the_bento_includes_exactly_the_monitoring_modules_the_service_needs() -> None:
    include = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["include"]
    shipped = {p.removeprefix("/src/").removesuffix(".py").replace("/", ".") for p in include if "monitoring" in p}
    assert shipped == SERVING_NEEDS_OF_MONITORING | {"mltemplate.monitoring.__init__"}


@pytest.mark.parametrize("key", ['"stages"', '"outs"'], ids=["dvc.lock", ".dvc files"])
def test_dvc_files_are_parsed_in_one_module(key: str) -> None:
    # Reading dvc.lock means walking its `stages`, reading a .dvc file its `outs`: only dvcfiles.py may do either.
    parsers = sorted(p.relative_to(SRC).as_posix() for p in PACKAGE.rglob("*.py") if key in p.read_text())
    assert parsers == ["mltemplate/dvcfiles.py"]


@pytest.mark.parametrize("stage", ["prepare", "train", "evaluate"])
def test_each_stage_depends_on_exactly_the_code_it_imports(stage: str) -> None:
    known = modules()
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    module = spec["cmd"].split()[-1]
    assert module == f"mltemplate.pipeline.{stage}"
    imported = {
        known[name].relative_to(ROOT).as_posix() for name in closure(module, known) if known[name].name != "__init__.py"
    }
    declared = {dep for dep in spec["deps"] if dep.startswith("src/")}
    assert declared == imported


MAX_LINES = 350
"""A file a reviewer can hold in their head: one job per file (STYLE.md)."""


def test_no_source_file_is_over_the_line_limit() -> None:
    long = {
        p.relative_to(SRC).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
