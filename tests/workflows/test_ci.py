"""ci.yml under act on a pull request: the lint job runs every pre-commit hook for real, the test job the unit tests
(the integration tests run in this very suite, not twice). Its third job, `workflows`, is this harness: it is not
run here (it would run itself)."""

from __future__ import annotations

import pytest

from tests.workflows.act import Act
from tests.workflows.conftest import Repo

pytestmark = [pytest.mark.integration, pytest.mark.workflows, pytest.mark.timeout(1800)]

UNIT_TESTS_ONLY = {"PYTEST_ADDOPTS": "-p no:cacheprovider -m 'not integration'"}


def pull_request(repo: Repo) -> dict[str, object]:
    head = repo.head()
    return {
        "action": "opened",
        "number": 7,
        "pull_request": {"number": 7, "head": {"sha": head, "ref": "main"}, "base": {"ref": "main", "sha": head}},
    }


def test_ci_on_a_pull_request_lints_every_file_and_passes_the_unit_tests(act: Act, repo: Repo) -> None:
    lint = act.run(repo.path, "ci.yml", "pull_request", pull_request(repo), job="lint")
    assert lint.result("lint") == "success", lint.explain()
    assert "ruff check" in lint.log
    assert "zizmor" in lint.log
    assert "lock files point at their index only, with hashes" in lint.log
    test = act.run(repo.path, "ci.yml", "pull_request", pull_request(repo), job="test", env=UNIT_TESTS_ONLY)
    assert test.result("test") == "success", test.explain()
    packages = "System packages the integration tests start (docker-registry, skopeo, nginx)"
    assert test.step("test", packages) == "success"
    assert " passed" in test.log
    assert set(lint.jobs) | set(test.jobs) == {"lint", "test"}
