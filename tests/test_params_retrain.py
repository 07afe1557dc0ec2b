"""params.yaml's `retrain` section: the cap on production rows per retrain and the trusted labellers, validated at
load time, and never part of the model's identity."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltemplate.params import ParamsError, RetrainParams, parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def raw() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "params.yaml").read_text()))


def with_retrain(raw: dict[str, Any], **section: Any) -> dict[str, Any]:
    changed = copy.deepcopy(raw)
    changed["retrain"] = section
    return changed


def test_the_section_is_optional_and_defaults_to_a_quarter_and_the_default_labellers(raw: dict[str, Any]) -> None:
    raw.pop("retrain", None)
    assert parse_params(raw).retrain == RetrainParams(max_new_share=0.25, trusted_labellers=["default", "operator"])


def test_an_integer_share_is_a_float(raw: dict[str, Any]) -> None:
    assert parse_params(with_retrain(raw, max_new_share=1)).retrain.max_new_share == 1.0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"max_new_share": 0}, r"^params.yaml: retrain.max_new_share: Input should be greater than 0"),
        ({"max_new_share": 1.5}, r"^params.yaml: retrain.max_new_share: Input should be less than or equal to 1"),
        ({"max_new_share": "all"}, r"^params.yaml: retrain.max_new_share: "),
        ({"trusted_labellers": []}, r"^params.yaml: retrain.trusted_labellers: List should have at least 1 item"),
        ({"trusted_labellers": ["Ops Team"]}, r"^params.yaml: retrain.trusted_labellers: 'Ops Team' is not a labeller"),
        ({"cap": 10}, r"^params.yaml: retrain.cap: unknown key$"),
    ],
)
def test_a_bad_value_names_its_key(raw: dict[str, Any], section: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params(with_retrain(raw, **section), source=Path("params.yaml"))


def test_retrain_policy_is_not_part_of_the_models_identity(raw: dict[str, Any]) -> None:
    before = parse_params(raw).identity()
    after = parse_params(with_retrain(raw, max_new_share=0.5, trusted_labellers=["ops"])).identity()
    assert "retrain" not in before
    assert after == before
