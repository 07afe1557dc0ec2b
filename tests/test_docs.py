"""The docs match the repository: every make target, link, anchor, path and module they name exists."""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

import mltemplate

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
MAKE = re.compile(r"(?<![\w-])make((?:\s+(?:-\S+|\w+=\S*))*)\s+([A-Za-z][\w-]*)")
PACKAGE = mltemplate.__name__  # by its runtime name: `make init` renames it, and the word in a string differently
# A whole dotted name not followed by `.<placeholder>`. No possessive quantifiers: Python 3.11.2 (Debian 12) lets them
# backtrack, and `mltemplate.pipeline.<stage>` became the module `mltemplate.pipeline.`.
MODULE = re.compile(rf"(?<![\w.]){PACKAGE}(?:\.\w+)+(?!\.?[\w<])")
RUN_MODULE = re.compile(rf"-m\s+({PACKAGE}(?:\.\w+)*)(?!\.?[\w<])")

# A backticked word is taken for a repository path when its first part is one of the repository's own directories,
# or it is one of its top-level files; any other word (a URL path, a MIME type, `build/...`) is not a claim about
# what the checkout holds.
ROOTS = {"src", "tests", "deploy", "docs", "tools", "benchmarks", ".github", "examples", "data", "plots", ".ci", ".dvc"}
TOP_FILES = {"params.yaml", "dvc.yaml", "dvc.lock", "Makefile", "bentofile.yaml", "data.dvc", "metrics.json"}
TOP_FILES |= {
    "pyproject.toml",
    "uv.lock",
    "BENCHMARKS.md",
    ".python-version",
    ".pre-commit-config.yaml",
}  # not copier.yml: template only
GENERATED = [
    "data/raw",  # `make data`: the tracked CSV, from DVC or rebuilt (git-ignored)
    "data/raw/*",
    "data/prepared/*",  # the prepare stage's outputs
    "data/reference/*",  # the reference set `make retrain` carves out
    ".dvc/config.local",  # `dvc remote modify --local` writes it, git-ignored
    "src/churn_model",  # the package `make init NAME=churn-model` renders
]
"""Paths the docs name that exist only once something ran; everything else they name must be in the checkout."""


def prose(text: str) -> str:
    return FENCE.sub("", text)


def code(text: str) -> list[str]:
    """The backticked spans and the fenced blocks: where the docs name targets, paths and commands."""
    return SPAN.findall(prose(text)) + FENCE.findall(text)


def targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation but `-` and `_` dropped, spaces to `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", prose(path.read_text()), flags=re.MULTILINE):
        base = slug(heading)
        seen[base] = seen.get(base, -1) + 1
        seen[f"{base}-{seen[base]}" if seen[base] else base] = 0
    return set(seen)


def expand(word: str) -> list[str]:
    """`a/{b,c}.py` -> `a/b.py`, `a/c.py`."""
    match = re.search(r"\{([^{}]*)\}", word)
    if not match:
        return [word]
    return [x for part in match[1].split(",") for x in expand(word[: match.start()] + part + word[match.end() :])]


def exists(path: str) -> bool:
    if any(fnmatch(path, pattern) for pattern in GENERATED):
        return True
    return any(ROOT.glob(path)) if any(c in path for c in "*?[") else (ROOT / path).exists()


def module_exists(name: str) -> bool:
    """`mltemplate.a.b` is a module, or a module and a name at its top level (`mltemplate.predict.predict`)."""
    parts = name.split(".")
    for cut in range(len(parts), 1, -1):
        base = ROOT / "src" / Path(*parts[:cut])
        source = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if source.exists():
            return cut == len(parts) or parts[cut] in top_level_names(source)
    return False


def top_level_names(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            assigned = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in assigned if isinstance(target, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def problems(path: Path, text: str | None = None) -> list[str]:
    text, where, found = path.read_text() if text is None else text, path.relative_to(ROOT), []
    known = targets()
    for block in code(text):
        found += [f"make {t}: no such target" for _, t in MAKE.findall(block) if t not in known]
        for name in RUN_MODULE.findall(block):
            package = ROOT / "src" / Path(*name.split("."))
            if not (package.with_suffix(".py").exists() or (package / "__main__.py").exists()):
                found.append(f"python -m {name}: nothing to run")
    for span in SPAN.findall(prose(text)):
        for word in re.split(r"[\s=]+", span):
            word = word.rstrip(",;:.)").removeprefix("./")
            first = word.split("/")[0]
            if ((first in ROOTS and "/" in word) or word in TOP_FILES) and not re.search(r"<|…|\.\.\.", word):
                found += [f"`{p}`: no such path" for p in expand(word) if not exists(p.rstrip("/"))]
    found += [f"{name}: no such module" for name in set(MODULE.findall(text)) if not module_exists(name)]
    for link in LINK.findall(prose(text)):
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.exists():
            found.append(f"[{link}]: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            found.append(f"[{link}]: no heading #{anchor} in {file.relative_to(ROOT)}")
    return [f"{where}: {problem}" for problem in found]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_name_only_what_exists(path: Path) -> None:
    assert problems(path) == []


def test_the_checks_catch_a_stale_name() -> None:
    text = f"`make push`, `src/{PACKAGE}/nope.py`, `{PACKAGE}.nope`, [x](deploy.md#nope), [y](nope.md)\n"
    assert len(problems(ROOT / "docs" / "example.md", text)) == 5
