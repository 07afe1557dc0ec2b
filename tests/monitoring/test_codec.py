"""The prediction log's codec: every kind of value survives the database and the spool's JSON; bad records refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mltemplate.columns import checked
from mltemplate.monitoring import codec, migrations, store
from mltemplate.schema import Schema


@pytest.fixture
def db(tmp_path: Path) -> sa.Engine:
    return migrations.open_store(f"sqlite:///{tmp_path / 'log.db'}")


def test_encode_and_read_back_every_kind_of_value(db: sa.Engine) -> None:
    columns = codec.Columns(numeric=("x", "y"), categorical=("kind",), outputs=("price",))
    rows = [(1.0, None, "a"), (2.5, -1e300, None)]
    with db.begin() as connection:
        store.write_requests(connection, [codec.encode("r", 5.0, "v2", columns, rows, None, np.array([3.0, 4.0]))])
        frame = store.read_records(connection)
    assert frame["x"].tolist() == [1.0, 2.5]
    assert np.isnan(frame["y"][0])
    assert frame["y"][1] == -1e300
    assert frame["kind"][0] == "a"
    assert pd.isna(frame["kind"][1])
    assert frame[codec.LABEL].isna().all()
    assert frame[codec.OUTPUT + "price"].tolist() == [3.0, 4.0]
    assert frame[codec.POSITION].tolist() == [0, 1]
    assert frame[codec.TS].tolist() == [5.0, 5.0]


def test_a_spooled_row_survives_json() -> None:
    columns = codec.Columns(numeric=("x",), categorical=("kind",), outputs=("no", "yes"))
    row = codec.encode("r", 1.0, "v", columns, [(0.1, "a")], ["no"], [[0.7, 0.3]])
    assert codec.from_json_safe(json.loads(json.dumps(codec.to_json_safe(row)))) == row


@pytest.mark.parametrize("positions", [[1], [0, 2], [0, 0]])
def test_records_whose_positions_are_not_0_to_n_are_refused(positions: list[int]) -> None:
    record = {"request_id": "r", "ts": 1.0, "model_version": "v", "features": {"x": 1.0}, "label": "a"}
    records = [{**record, "position": p, "probabilities": {"a": 1.0}} for p in positions]
    with pytest.raises(codec.CodecError, match=r"request 'r': positions are not 0\.\."):
        codec.encode_records(records)


def test_a_columnar_block_encodes_as_its_rows_do() -> None:
    columns = codec.Columns(numeric=("x", "y"), categorical=("kind",), outputs=("price",))
    rows = [(1.0, None, "a"), (2.5, -1e300, None)]
    schema = Schema(numeric=("x", "y"), categorical=("kind",), target="price", positive_class=None, task="regression")
    block = checked({"x": [1.0, 2.5], "y": [None, -1e300], "kind": ["a", None]}, schema, nullable={"y", "kind"})
    outputs = np.array([3.0, 4.0])
    assert codec.encode("r", 5.0, "v2", columns, block, None, outputs) == codec.encode(
        "r", 5.0, "v2", columns, rows, None, outputs
    )
