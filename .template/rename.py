"""The template's one placeholder: the word `mltemplate` in every file and path becomes the project's names when copier
renders this repository (copier.yml loads this Jinja extension). A Python name (`import mltemplate`,
`mltemplate.pipeline`, `src/mltemplate`, a path part) becomes the package (`churn_model`); every other use (the
distribution, Kubernetes namespaces, labels such as `dev.mltemplate.model-md5`) becomes the name (`churn-model`).
The README's title and params.yaml's `name` become the name too. Standard library and Jinja only: copier loads it
from the template's own checkout."""

from __future__ import annotations

import re

from jinja2.ext import Extension

PLACEHOLDER = "mltemplate"
PACKAGE = "<[[ package ]]>"
NAME = "<[[ name ]]>"
"""copier.yml's variable delimiters around its answers: `name` and `package` (the name with `_` for `-`)."""

_PYTHON_NAME = re.compile(
    rf"(?<=/){PLACEHOLDER}|(?<=\bimport ){PLACEHOLDER}|(?<=\bfrom ){PLACEHOLDER}|(?<![.\w-]){PLACEHOLDER}(?=[./]\w)"
)
_LINES = {
    "README.md": re.compile(r"\A# .*$", re.MULTILINE),
    "params.yaml": re.compile(r"^name: \S+", re.MULTILINE),
}
"""Per file, the line that names the project: replaced by `# <name>` (the README's title) or `name: <name>`."""


def rename(source: str, path: str | None) -> str:
    """`source`, the text of the template file at `path` (None: a file or folder name), with the placeholder
    replaced by the answers' delimited variables."""
    if path is None:
        return source.replace(PLACEHOLDER, PACKAGE)
    line = _LINES.get(path)
    if line is not None:
        source = line.sub(lambda found: ("# " if found[0].startswith("#") else "name: ") + NAME, source, count=1)
    return _PYTHON_NAME.sub(PACKAGE, source).replace(PLACEHOLDER, NAME)


class Rename(Extension):
    """Jinja calls `preprocess` on every template and string before parsing it."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return rename(source, name)
