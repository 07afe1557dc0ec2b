"""The template's one placeholder (.template/rename.py) and what copier.yml needs of every file. Template-only:
copier.yml leaves this test out of the projects it makes."""

from __future__ import annotations

import importlib.util
import subprocess
from types import ModuleType

import pytest
import yaml

from tests.conftest import ROOT

COPIER = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))


def rename_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rename", ROOT / ".template/rename.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("source", "renamed"),
    [
        ("from mltemplate import atomic\n", "from <[[ package ]]> import atomic\n"),
        ("import mltemplate.pipeline\n", "import <[[ package ]]>.pipeline\n"),
        ("python -m mltemplate.pipeline.train", "python -m <[[ package ]]>.pipeline.train"),
        ('packages = ["src/mltemplate"]', 'packages = ["src/<[[ package ]]>"]'),
        ('name = "mltemplate"', 'name = "<[[ name ]]>"'),
        ("namespace: mltemplate-staging", "namespace: <[[ name ]]>-staging"),
        ('MODEL_LABEL_PREFIX = "dev.mltemplate"', 'MODEL_LABEL_PREFIX = "dev.<[[ name ]]>"'),
        ('labels["dev.mltemplate.data-md5"]', 'labels["dev.<[[ name ]]>.data-md5"]'),
    ],
)
def test_python_names_become_the_package_and_others_the_name(source: str, renamed: str) -> None:
    assert rename_module().rename(source, "any.py") == renamed


def test_a_folder_named_for_the_package_becomes_the_package() -> None:
    assert rename_module().rename("mltemplate", None) == "<[[ package ]]>"


def test_the_readme_title_and_the_params_name_become_the_name() -> None:
    rename = rename_module().rename
    assert rename("# ML CI/CD template\n\n# not a title\n", "README.md") == "# <[[ name ]]>\n\n# not a title\n"
    params = "# name: a comment\nname: breast-cancer-classifier  # MLflow\nseed: 42\n"
    assert rename(params, "params.yaml") == "# name: a comment\nname: <[[ name ]]>  # MLflow\nseed: 42\n"


def test_no_file_holds_copier_yml_delimiters_so_copier_leaves_every_other_byte_alone() -> None:
    delimiters = [value for key, value in COPIER["_envops"].items() if key.endswith("_string")]
    own = {"copier.yml", ".copier-answers.yml", ".template/rename.py", "tests/test_rename.py"}
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    holding = {}
    for name in filter(None, listed.split("\0")):
        if name in own or not (ROOT / name).is_file():
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # copier copies a file that is not UTF-8 text as it is
        found = [d for d in delimiters if d in text]
        if found or "\r" in text:
            holding[name] = found or ["\\r (Jinja would turn it into \\n)"]
    assert holding == {}


def test_what_copier_yml_excludes_exists() -> None:
    for pattern in COPIER["_exclude"]:
        assert list(ROOT.glob(pattern)), f"copier.yml excludes {pattern!r}, which the template does not have"
