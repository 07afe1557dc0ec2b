"""What a retrain may add: trusted labels only, rows within the contract, no row the data already holds, no repeat,
at most the cap (a seeded sample); and the reference set, carved so a row and its duplicates go the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mltemplate import contract
from mltemplate.monitoring import codec, labels, migrations, reference, retrain, store
from mltemplate.monitoring.feedback import Resolved
from mltemplate.same_rows import row_keys

FEATURES = ["x", "kind"]
CONTRACT = contract.Contract(
    {
        "id": contract.Column("category"),
        "x": contract.Column("number"),
        "kind": contract.Column("category", ("a", "b")),
        "y": contract.Column("category", ("neg", "pos")),
    }
)
HEADER = ["id", "x", "kind", "y"]


def found(xs: list[float], kinds: list[str], ys: list[str], sources: list[str] | None = None) -> pd.DataFrame:
    """Labelled records as labelled_records gives them: features, the true label, its labeller."""
    return pd.DataFrame({"x": xs, "kind": kinds, codec.LABEL: ys, retrain.LABELLER: sources or ["default"] * len(xs)})


def choose(
    records: pd.DataFrame, *, held: set[str] | None = None, data_rows: int = 100, share: float = 1.0
) -> retrain.Selection:
    return retrain.select(
        records,
        header=HEADER,
        target="y",
        features=FEATURES,
        expected=CONTRACT,
        held=held or set(),
        data_rows=data_rows,
        share=share,
        seed=0,
    )


def test_new_rows_take_the_csvs_columns_with_the_true_label_and_dropped_columns_empty() -> None:
    chosen = choose(found([1.5, 2.0], ["a", "b"], ["pos", "neg"]))
    assert chosen.rows.to_dict("records") == [
        {"id": "", "x": "1.5", "kind": "a", "y": "pos"},
        {"id": "", "x": "2.0", "kind": "b", "y": "neg"},
    ]
    assert chosen.sources.tolist() == ["default", "default"]


def test_rows_outside_the_contract_held_already_or_repeated_are_dropped_and_counted() -> None:
    held = set(row_keys(pd.DataFrame({"x": ["3"], "kind": ["a"]}), FEATURES))
    records = found([1.0, 2.0, 3.0, 1.0, 4.0], ["a", "z", "a", "a", "b"], ["pos", "pos", "pos", "neg", "neg"])
    chosen = choose(records, held=held)
    assert chosen.rows["x"].tolist() == ["1.0", "4.0"]
    assert chosen.dropped == {
        "outside the data contract": 1,  # an unknown kind
        "features the data or the reference set already holds": 1,  # 3.0 == the data's "3"
        "repeats of another new row": 1,  # the second x=1.0, a: its first label stands
    }


def test_at_most_the_cap_is_added_a_seeded_sample_and_the_rest_waits() -> None:
    n = 1000
    records = found([float(i) for i in range(n)], ["a"] * n, ["pos"] * n)
    first, again = (choose(records, data_rows=400, share=0.25) for _ in range(2))
    assert (len(first.rows), first.cap, first.eligible, first.left) == (100, 100, n, 900)
    assert first.rows.equals(again.rows)  # the same sample every time for the same seed
    picked = first.rows["x"].astype(float).to_numpy()
    assert np.all(np.diff(picked) > 0)  # in the order they were answered
    assert picked.max() > 500  # spread over the candidates, not the oldest first


def test_the_reference_set_is_every_row_matching_a_held_out_one_duplicates_included() -> None:
    raw = pd.DataFrame({"id": ["1", "2", "3", "4"], "x": ["1", "2", "2.0", "3"], "kind": ["a"] * 4, "y": ["pos"] * 4})
    held_out = pd.DataFrame({"x": ["2.0"], "kind": ["a"], "y": ["pos"], "extra": ["?"]})
    rest, carved = reference.carve(raw, held_out, ["x", "kind", "y"])
    assert carved["id"].tolist() == ["2", "3"]
    assert rest["id"].tolist() == ["1", "4"]


def test_only_trusted_labels_count_and_the_others_are_named(database: str) -> None:
    db = migrations.open_store(database)
    columns = codec.Columns(("x",), ("kind",), ("neg", "pos"))
    with db.begin() as connection:
        store.write_requests(
            connection,
            [codec.encode(f"r{i}", float(i), "v", columns, [(float(i), "a")], ["pos"], [[0.2, 0.8]]) for i in range(4)],
        )
    labels.store_labels(db, [Resolved("r0", 0, "neg"), Resolved("r1", 0, "pos")], labeller="default", submission="a")
    labels.store_labels(db, [Resolved("r1", 0, "neg"), Resolved("r2", 0, "neg")], labeller="mallory", submission="b")
    labels.store_labels(db, [Resolved("gone", 0, "neg")], labeller="default", submission="c")
    found = retrain.labelled_records(db, ["default"])
    db.dispose()
    records = found.records
    assert records[codec.REQUEST_ID].tolist() == ["r0", "r1"]
    assert records[codec.LABEL].tolist() == ["neg", "pos"]  # r1: mallory's later label is not trusted
    assert (found.untrusted, found.unlogged) == ({"mallory": 1}, 1)


@pytest.mark.parametrize(("a", "b"), [("3", "3.0"), ("1e3", "1000"), (" x ", "x"), ("", "")])
def test_row_keys_spell_numbers_one_way(a: str, b: str) -> None:
    keys = row_keys(pd.DataFrame({"v": [a, b]}), ["v"])
    assert keys[0] == keys[1]


def test_labelled_records_of_an_empty_log_are_empty(tmp_path: Path) -> None:
    db = migrations.open_store(f"sqlite:///{tmp_path}/log.db")
    assert retrain.labelled_records(db, ["default"]).records.empty
    with db.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(store.labels)).scalar() == 0
    db.dispose()
