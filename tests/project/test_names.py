"""names.py: what make init and make update-template accept from the command line, and the values they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

import mltemplate
from mltemplate.project.names import ValueRefused, check_csv, check_name, check_ref, check_template, package_of

# Not this package's own name: in a project made by `make init`, its package is taken (RESERVED holds it).
VALID = [
    name for name in ("churn-model", "fraud-model", "a", "fraud2", "x-1-y") if package_of(name) != mltemplate.__name__
]


@pytest.mark.parametrize("name", VALID)
def test_a_project_name_is_lowercase_words_joined_by_single_hyphens(name: str) -> None:
    assert check_name(name) == name
    assert package_of(name).isidentifier()


@pytest.mark.parametrize(
    "name",
    [
        "$(shell id)",
        "a;id",
        '"; id; "',
        "Churn",
        "churn_model",
        "-churn",
        "churn--model",
        "churn-",
        "1churn",
        "",
        "x" * 41,
        "churn model",
        "../up",
    ],
)
def test_names_that_are_no_package_or_reach_a_shell_are_refused(name: str) -> None:
    with pytest.raises(ValueRefused, match="NAME"):
        check_name(name)


@pytest.mark.parametrize("name", ["json", "class", "test", "tests", "benchmarks"])
def test_a_name_that_would_shadow_a_module_is_refused(name: str) -> None:
    with pytest.raises(ValueRefused, match="shadow"):
        check_name(name)


def test_a_name_taken_by_a_locked_dependency_is_refused() -> None:
    with pytest.raises(ValueRefused, match="shadow"):
        check_name("mlflow", taken=frozenset({"mlflow", "pandas"}))


@pytest.mark.parametrize(
    "template",
    ["https://github.com/acme/ml-template.git", "git@github.com:acme/ml-template.git", "file:///srv/template"],
)
def test_a_template_may_be_a_git_url(template: str) -> None:
    assert check_template(template) == template


def test_a_template_may_be_a_checkout(tmp_path: Path) -> None:
    assert check_template(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize(
    "template",
    [
        "ext::sh -c id",
        "--upload-pack=touch /tmp/pwned",
        "-c core.sshCommand=id",
        "https://host/a b",
        "https://host/$(id)",
        "https://host/a;id",
        "/no/such/directory",
        "fd::3",
        "https://host/\x00",
    ],
)
def test_a_template_that_is_an_option_a_transport_or_missing_is_refused(template: str) -> None:
    with pytest.raises(ValueRefused, match="TEMPLATE"):
        check_template(template)


def test_a_csv_must_exist_and_have_a_plain_name(tmp_path: Path) -> None:
    good = tmp_path / "churn_2024.csv"
    good.write_text("a,b\n1,2\n")
    assert check_csv(str(good)) == good
    for bad in (tmp_path / "missing.csv", tmp_path / "data.txt", tmp_path / "$(id).csv", tmp_path / ".hidden.csv"):
        with pytest.raises(ValueRefused, match="CSV"):
            check_csv(str(bad))
    with pytest.raises(ValueRefused, match="CSV"):
        check_csv("--output=x.csv")


@pytest.mark.parametrize("ref", ["main", "v2.1.0", "release/2026-11", "0123abc"])
def test_a_version_is_a_branch_tag_or_commit(ref: str) -> None:
    assert check_ref(ref) == ref


@pytest.mark.parametrize("ref", ["--all", "HEAD~1", "main..evil", "a b", "@{-1}", "x^{tree}", ""])
def test_a_version_that_is_an_option_or_an_expression_is_refused(ref: str) -> None:
    with pytest.raises(ValueRefused, match="VERSION"):
        check_ref(ref)
