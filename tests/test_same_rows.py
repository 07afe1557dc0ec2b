"""comparison.compare_models on two tiny checkouts, each prepared and trained as the pipeline does (its splits with
their row ids, its model saved with metadata): the rows it compares on, and the reasons it gives instead of numbers
when the base cannot score the candidate's rows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mltemplate import metrics
from mltemplate.comparison import Comparison
from mltemplate.params import Params, parse_params
from mltemplate.paths import MODEL_FILE, MODEL_METADATA, TEST_CSV, TRAIN_CSV
from mltemplate.pipeline.prepare import prepare, write_csv
from mltemplate.pipeline.train import train
from mltemplate.same_rows import Trained, compare_models, shared_rows
from mltemplate.schema import ROW_ID
from tests.conftest import save_model, trained_model

TARGET = "outcome"


# --- which rows ---------------------------------------------------------------------------------------------


def rows(n: int) -> pd.DataFrame:
    """`n` distinct rows as a split's CSV reads back as text."""
    return pd.DataFrame({"x": [f"{i / 7:.3f}" for i in range(n)], "site": ["north", "south"] * (n // 2), "y": "a"})


def test_rows_are_matched_by_content_whatever_their_order_or_the_column_order() -> None:
    frame = rows(30)
    candidate_test = frame.iloc[:20].sample(frac=1, random_state=0)  # rows 0-19, shuffled
    base_train = frame.iloc[10:][["y", "site", "x"]]  # rows 10-29, columns in another order
    candidate_train = frame.iloc[25:]
    shared = shared_rows(candidate_test, Trained(base_train), Trained(candidate_train))
    assert sorted(candidate_test.index[shared]) == list(range(10))  # the base trained on rows 10-19


def test_columns_only_one_side_has_do_not_keep_rows_apart() -> None:
    frame = rows(20)
    candidate_test = frame.assign(note="held-out only")  # the held-out split keeps every column of the CSV
    shared = shared_rows(candidate_test, Trained(frame.iloc[5:].drop(columns="site")))
    assert list(shared) == list(range(5))


def test_rows_are_matched_by_their_ids_when_every_split_has_them() -> None:
    frame = rows(10).assign(**{ROW_ID: [f"{i:016x}" for i in range(10)]})
    retyped = frame.iloc[4:].assign(x="1.0")  # the same rows, their cells spelled another way
    assert list(shared_rows(frame, Trained(retyped))) == [0, 1, 2, 3]


def test_a_row_either_model_was_trained_on_is_left_out() -> None:
    frame = rows(12)
    assert list(shared_rows(frame.iloc[:6], Trained(frame.iloc[[0]]), Trained(frame.iloc[[5]]))) == [1, 2, 3, 4]


def with_ids(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{ROW_ID: [f"{i:016x}" for i in range(len(frame))]})


def test_a_model_trained_on_one_column_is_compared_on_every_row_it_held_out() -> None:
    # Its training split holds one feature with two values and the target: every held-out row's cells match some
    # training row's, yet the ids say which rows it held out.
    frame = with_ids(rows(40))
    candidate_test, candidate_train = frame.iloc[:10], frame.iloc[10:][["site", "y", ROW_ID]]
    assert list(shared_rows(candidate_test, Trained(candidate_train, candidate_test))) == list(range(10))
    assert list(shared_rows(candidate_test, Trained(candidate_train))) == []  # by content alone: all "seen"


def test_a_row_the_models_data_never_held_is_seen_when_its_cells_match_a_training_row() -> None:
    frame = with_ids(rows(20))
    base_train, base_test = frame.iloc[5:], frame.iloc[:5]
    moved = frame.iloc[[0, 12]].assign(**{ROW_ID: ["new-0", "new-12"]})  # ids changed: the CSV gained a column
    candidate_test = pd.concat([frame.iloc[:3], moved], ignore_index=True)
    # Rows 0-2 base held out (by id); row 0 again, of unknown origin: unseen, as its cells match no training row;
    # row 12, of unknown origin, matches a training row's cells: seen.
    assert list(shared_rows(candidate_test, Trained(base_train, base_test))) == [0, 1, 2, 3]


# --- two checkouts' models -----------------------------------------------------------------------------


def raw_data(task: metrics.Task, n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A raw CSV's rows for `task`: two numbers, a category, and a target that depends on them."""
    rng = np.random.default_rng(seed)
    x, noise = rng.normal(0, 1, n).round(4), rng.normal(0, 1, n).round(4)
    site = rng.choice(["north", "south"], n)
    signal = x + 0.5 * (site == "north") + rng.normal(0, 0.5, n)
    if task == "regression":
        target: Any = (10 + 3 * signal).round(4)
    elif task == "binary":
        target = np.where(signal > 0.2, "sick", "well")
    else:
        target = np.select([signal < -0.4, signal < 0.6], ["low", "mid"], "high")
    return pd.DataFrame({"x": x, "noise": noise, "site": site, TARGET: target})


def params_for(task: metrics.Task, *, seed: int, categorical: tuple[str, ...] = ("site",)) -> Params:
    estimator = "ridge" if task == "regression" else "logistic_regression"
    data: dict[str, Any] = {"raw": "data/raw/demo.csv", "target": TARGET, "task": task}
    data["categorical"] = list(categorical)
    if task == "binary":
        data["positive_class"] = "sick"
    return parse_params(
        {"name": "demo", "seed": seed, "data": data, "split": {"test_size": 0.5}, "model": {"estimator": estimator}}
    )


def checkout(root: Path, raw: pd.DataFrame, params: Params) -> Path:
    """`root` as a checkout after `dvc repro train`: data/prepared/ and models/."""
    train_rows, test_rows, schema = prepare(raw, params)
    write_csv(train_rows, root / TRAIN_CSV)
    write_csv(test_rows, root / TEST_CSV)
    features, labels = schema.read(root / TRAIN_CSV)
    pipeline = train(features, labels, schema, params.model, seed=params.seed)
    save_model(trained_model(pipeline, schema), model_path=root / MODEL_FILE, metadata_path=root / MODEL_METADATA)
    return root


def content(path: Path, columns: list[str]) -> list[tuple[str, ...]]:
    """A split's rows as text in `columns`, however the file orders them."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [tuple(row) for row in frame[columns].itertuples(index=False)]


def unseen(candidate: Path, *models: Path) -> int:
    """How many of the candidate's held-out rows no model was trained on, by their content."""
    columns = ["x", "noise", "site", TARGET]
    seen = {row for root in models for row in content(root / TRAIN_CSV, columns)}
    return sum(row not in seen for row in content(candidate / TEST_CSV, columns))


@pytest.mark.parametrize("task", metrics.TASKS)
def test_a_changed_seed_compares_on_the_rows_neither_model_was_trained_on(task: metrics.Task, tmp_path: Path) -> None:
    raw = raw_data(task)
    base = checkout(tmp_path / "base", raw, params_for(task, seed=1))
    candidate = checkout(tmp_path / "pr", raw, params_for(task, seed=2))
    found = compare_models(base, candidate, slices=["site"], seed=0)
    assert found.available, found.reason
    assert 0 < found.rows == unseen(candidate, base, candidate) < len(raw) // 2  # base training rows left out
    assert [d.metric for d in found.differences] == metrics.names(task)
    assert {g.value for g in found.groups} == {"north", "south"}
    assert sum(g.rows for g in found.groups) == found.rows


def test_a_model_compared_with_itself_shows_no_measurable_difference(tmp_path: Path) -> None:
    root = checkout(tmp_path / "repo", raw_data("binary"), params_for("binary", seed=1))
    found = compare_models(root, root, seed=0)
    assert found.rows == len(pd.read_csv(root / TEST_CSV))
    assert {(d.low, d.high, d.verdict) for d in found.differences} == {(0.0, 0.0, "no measurable difference")}


def test_base_training_rows_are_left_out_after_the_data_changed(tmp_path: Path) -> None:
    # A retraining PR: rows appended, a column added and the columns in another order.
    raw = raw_data("binary")
    more = pd.concat([raw, raw_data("binary", n=80, seed=5)], ignore_index=True)
    more = more.assign(batch="2")[["site", TARGET, "batch", "noise", "x"]]
    base = checkout(tmp_path / "base", raw, params_for("binary", seed=1))
    candidate = checkout(tmp_path / "pr", more, params_for("binary", seed=2))
    found = compare_models(base, candidate, seed=0)
    assert found.available, found.reason
    assert found.rows == unseen(candidate, base, candidate)


def test_the_base_needing_a_column_the_candidate_lacks_is_named(tmp_path: Path) -> None:
    raw = raw_data("binary")
    base = checkout(tmp_path / "base", raw, params_for("binary", seed=1))
    candidate = checkout(tmp_path / "pr", raw.drop(columns="noise"), params_for("binary", seed=1))
    found = compare_models(base, candidate)
    assert found.differences == ()
    assert found.reason == "the candidate's held-out rows have no column 'noise', which the base model needs"


def test_a_column_the_candidate_retyped_is_named(tmp_path: Path) -> None:
    raw = raw_data("binary")
    base = checkout(tmp_path / "base", raw, params_for("binary", seed=1))
    retyped = raw.assign(x=np.where(raw["x"] > 0, "high", "low"))
    candidate = checkout(tmp_path / "pr", retyped, params_for("binary", seed=1, categorical=("site", "x")))
    found = compare_models(base, candidate)
    assert found.differences == ()
    assert re.fullmatch(
        r"the base model reads column 'x' as numbers; the candidate's rows hold '(high|low)'", str(found.reason)
    )


def test_models_of_different_tasks_are_not_compared(tmp_path: Path) -> None:
    base = checkout(tmp_path / "base", raw_data("binary"), params_for("binary", seed=1))
    candidate = checkout(tmp_path / "pr", raw_data("regression"), params_for("regression", seed=1))
    found = compare_models(base, candidate)
    assert found.reason == (
        f"the base models {TARGET!r} as a binary task (positive class 'sick'), "
        f"the candidate {TARGET!r} as a regression task (positive class None)"
    )


def test_a_class_the_base_never_saw_is_a_reason(tmp_path: Path) -> None:
    raw = raw_data("multiclass")
    base = checkout(tmp_path / "base", raw[raw[TARGET] != "high"], params_for("multiclass", seed=1))
    candidate = checkout(tmp_path / "pr", raw, params_for("multiclass", seed=1))
    found = compare_models(base, candidate)
    assert found.reason == "the base model does not know class 'high' of the held-out rows"


def test_a_checkout_without_a_model_is_a_reason(tmp_path: Path) -> None:
    candidate = checkout(tmp_path / "pr", raw_data("binary"), params_for("binary", seed=1))
    found = compare_models(tmp_path / "nothing", candidate)
    assert found == Comparison(reason=found.reason)
    assert "no trained model at" in str(found.reason)


def test_splits_from_before_row_ids_are_matched_by_content(tmp_path: Path) -> None:
    raw = raw_data("binary")
    base = checkout(tmp_path / "base", raw, params_for("binary", seed=1))
    split = pd.read_csv(base / TRAIN_CSV, dtype=str, keep_default_na=False)
    write_csv(split.drop(columns=ROW_ID), base / TRAIN_CSV)  # a base prepared before splits had row ids
    candidate = checkout(tmp_path / "pr", raw, params_for("binary", seed=2))
    assert compare_models(base, candidate).rows == unseen(candidate, base, candidate)
