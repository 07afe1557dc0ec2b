"""The values `make init` and `make update-template` take from the command line (NAME, CSV, TARGET, TEMPLATE),
checked before any of them reaches git, copier or a file name; reads and writes no file."""

from __future__ import annotations

import keyword
import re
import sys
from pathlib import Path

from mltemplate.errors import CommandError

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_NAME = 40
"""A name is also a Kubernetes namespace prefix (`<name>-production`: 63 characters at most) and an image name."""
CSV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.csv$")
URL = re.compile(r"^(?:(?:https|ssh|git|file)://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)[A-Za-z0-9._~:/@%+=-]+$")
"""A git URL: https, ssh, git or file, or scp-like user@host:path. No spaces, quotes, `;`, `$`, `::` transports."""
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
"""A branch, tag or commit: no option, no revision expression."""


RESERVED = frozenset({"mltemplate", "tests", "test", "benchmarks", "tools", "src", "docs"})
"""The template's own package and the repository's top-level folders, which tests import from too."""


class ValueRefused(CommandError):
    """A command-line value that is not allowed; the message says what is."""


def package_of(name: str) -> str:
    """The Python package of a project name: `churn-model` -> `churn_model`."""
    return name.replace("-", "_")


def check_name(name: str, *, taken: frozenset[str] = frozenset()) -> str:
    """A project name: lowercase letters, digits and single hyphens, starting with a letter; its package must not
    shadow a Python keyword, a standard-library module or a distribution in `taken` (uv.lock's packages)."""
    if not NAME.match(name) or len(name) > MAX_NAME:
        raise ValueRefused(
            f"NAME {name!r} is not a project name: use lowercase letters, digits and single hyphens, starting with a "
            f"letter, at most {MAX_NAME} characters (e.g. churn-model)"
        )
    package = package_of(name)
    if keyword.iskeyword(package) or package in sys.stdlib_module_names or {name, package} & RESERVED or name in taken:
        raise ValueRefused(f"NAME {name!r}: its package {package!r} would shadow a module of that name; choose another")
    return name


def check_csv(path: str) -> Path:
    """An existing CSV file whose name is safe to keep as data/raw/<name>."""
    csv = Path(path)
    if path.startswith("-") or not CSV_NAME.match(csv.name):
        raise ValueRefused(f"CSV {path!r}: give a path to a .csv file named with letters, digits, `.`, `_`, `-`")
    if not csv.is_file():
        raise ValueRefused(f"CSV {path!r}: no such file")
    return csv


def check_target(target: str, columns: list[str]) -> str:
    """The target column: one of the CSV's columns."""
    if target not in columns:
        raise ValueRefused(f"TARGET {target!r} is not a column of the CSV; its columns: {columns}")
    return target


def check_template(template: str) -> str:
    """Where the template is: a git URL or an existing directory; never an option or a git transport command."""
    if template.startswith("-") or any(c.isspace() or not c.isprintable() for c in template):
        raise ValueRefused(f"TEMPLATE {template!r}: give a git URL or the path of a checkout of the template")
    if URL.match(template) or (Path(template).is_dir() and "::" not in template):
        return template
    raise ValueRefused(
        f"TEMPLATE {template!r} is neither an existing directory nor a git URL (https://, ssh://, git://, file:// "
        "or user@host:path)"
    )


def check_ref(ref: str) -> str:
    """A template version to update to: a branch, tag or commit."""
    if not REF.match(ref) or ".." in ref:
        raise ValueRefused(f"VERSION {ref!r}: give a branch, tag or commit of the template")
    return ref
