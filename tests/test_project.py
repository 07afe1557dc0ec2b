"""This project's own files agree with each other: what a data scientist's pull request changes (params.yaml, data.dvc,
the data contract) and the outputs committed beside them. Seconds and no process: the fast lane (`make test-project`)
runs these; the PR report then reproduces the outputs themselves and applies the gate."""

from __future__ import annotations

import json

import pytest

from mltemplate import metrics, plots
from mltemplate.contract import read
from mltemplate.params import Params
from tests.conftest import ROOT

pytestmark = pytest.mark.project


def features(params: Params) -> list[str]:
    """The feature columns params.yaml selects from the contract's columns, in the CSV's order."""
    columns = list(read(ROOT / "data/contract.yaml").columns)
    data = params.data
    return [c for c in columns if c in (data.features or columns) and c not in {data.target, *data.drop}]


def test_params_name_only_columns_the_data_contract_has(params: Params) -> None:
    columns = set(read(ROOT / "data/contract.yaml").columns)
    data = params.data
    named = {data.target, *(data.features or []), *data.categorical, *data.drop, *params.evaluate.slices}
    assert named <= columns, f"params.yaml names {sorted(named - columns)}, which data/contract.yaml does not have"


def test_numeric_features_are_numbers_in_the_contract(params: Params) -> None:
    contract = read(ROOT / "data/contract.yaml")
    text = [c for c in features(params) if c not in params.data.categorical and contract.columns[c].kind != "number"]
    assert text == [], f"{text} hold text: list them in data.categorical (or data.drop)"


def test_committed_metrics_are_those_of_the_task_and_its_thresholds(params: Params) -> None:
    found = set(metrics.scalar_metrics(metrics.read_metrics(ROOT / "metrics.json")))
    assert found & set(metrics.names(params.data.task)), "metrics.json is another task's: run `make run`, commit"
    missing = sorted(set(params.evaluate.thresholds) - found - {"mape"})  # mape is left out when a target is 0
    assert missing == [], f"metrics.json lacks {missing}: run `make run` and commit its outputs"


def test_committed_plots_are_those_of_the_task(params: Params) -> None:
    wanted = {plot.data for plot in plots.for_task(params.data.task)}
    present = {plot.data for plot in plots.PLOTS if (ROOT / plot.data).exists()}
    assert present == wanted, "plots/ is another task's: run `make run` and commit its outputs"


def test_the_example_request_holds_exactly_the_features(params: Params) -> None:
    example = json.loads((ROOT / "examples/predict.json").read_text(encoding="utf-8"))
    assert set(example["records"][0]) == set(features(params))
