"""propose.py: the params.yaml make init proposes for a CSV, for each kind of target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mltemplate.errors import CommandError
from mltemplate.params import parse_params
from mltemplate.project.propose import params_text, propose


def cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as prepare reads a CSV: every cell text, missing values NaN."""
    return frame.astype(object).where(frame.notna(), np.nan).map(lambda v: v if pd.isna(v) else str(v))


def customers(target: list[object]) -> pd.DataFrame:
    n = len(target)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "tenure": rng.integers(1, 60, n),
            "plan": rng.choice(["basic", "plus"], n),
            "label": target,
        }
    )
    frame.loc[3, "plan"] = np.nan
    return cells(frame)


def test_string_labels_make_a_binary_task_about_the_rarer_class() -> None:
    found = propose(customers(["churned"] * 30 + ["stayed"] * 70), "label")
    assert (found.task, found.positive_class) == ("binary", "churned")
    assert found.categorical == ["plan"]
    assert found.drop == ["customer_id"]


@pytest.mark.parametrize(
    ("labels", "positive"), [(["0", "1"], "1"), (["no", "yes"], "yes"), (["False", "True"], "True")]
)
def test_a_label_that_names_the_positive_class_is_the_positive_class(labels: list[str], positive: str) -> None:
    found = propose(customers([labels[1]] * 80 + [labels[0]] * 20), "label")  # the positive class is the majority
    assert found.positive_class == positive


def test_several_labels_make_a_multiclass_task() -> None:
    found = propose(customers(["a", "b", "c", "d"] * 25), "label")
    assert (found.task, found.positive_class) == ("multiclass", None)
    assert found.thresholds == {"accuracy": 0.25, "log_loss": 1.3863}


def test_few_integer_values_are_classes_and_many_numbers_a_quantity() -> None:
    assert propose(customers([1, 2, 3, 4, 5] * 20), "label").task == "multiclass"
    assert propose(customers([round(0.37 * i, 2) for i in range(100)]), "label").task == "regression"


def test_a_target_with_one_value_is_refused() -> None:
    with pytest.raises(CommandError, match="single value"):
        propose(customers(["x"] * 100), "label")


@pytest.mark.parametrize(
    "target", [["churned"] * 30 + ["stayed"] * 70, ["a", "b", "c", "d"] * 25, [float(i) for i in range(100)]]
)
def test_the_proposal_is_valid_params_whose_thresholds_gate_and_monitor(target: list[object]) -> None:
    found = propose(customers(target), "label")
    text = params_text(found, name="churn-model", raw_path=Path("data/raw/customers.csv"), target="label")
    params = parse_params(yaml.safe_load(text))
    assert params.name == "churn-model"
    assert (params.data.task, params.data.drop) == (found.task, ["customer_id"])
    assert params.evaluate.thresholds == params.monitor.thresholds == found.thresholds
    assert "PLACEHOLDERS" in text  # the thresholds say what they are
