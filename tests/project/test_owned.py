"""owned.py: the team's files, and the lane a pull request takes."""

from __future__ import annotations

import pytest

from mltemplate.project.owned import lane


@pytest.mark.parametrize(
    "changed",
    [
        ["params.yaml"],
        ["params.yaml", "dvc.lock", "metrics.json", "plots/roc.json", "plots/roc.png", "examples/predict.json"],
        ["data.dvc", "data/contract.yaml", "data/raw/.gitignore", "dvc.lock"],
    ],
    ids=["params", "params and outputs", "new data"],
)
def test_a_change_of_params_data_and_outputs_takes_the_project_lane(changed: list[str]) -> None:
    assert lane(changed) == "project"


@pytest.mark.parametrize(
    "changed",
    [
        ["params.yaml", "src/mltemplate/pipeline/train.py"],
        [".github/workflows/ci.yml"],
        ["uv.lock"],
        ["tests/test_params.py"],
        ["dvc.yaml"],
        ["plotsevil.py"],
        [],
    ],
    ids=["code", "workflow", "lockfile", "tests", "pipeline definition", "lookalike", "nothing"],
)
def test_any_other_change_takes_the_template_lane(changed: list[str]) -> None:
    assert lane(changed) == "template"
