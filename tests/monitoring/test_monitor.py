"""`make monitor` end to end, on SQLite and on PostgreSQL: a served model answers held-out records and gets their
labels, the monitor says healthy (exit 0) and writes its reports; after a shifted stream it exits 1 naming the
shifted features. And, on a log of our own: labels that make recall drop trip the recall alert."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mltemplate.metrics import ALL_METRICS, read_metrics
from mltemplate.model_metadata import ModelMetadata, read_model_metadata
from mltemplate.monitoring import check, codec, migrations, store
from mltemplate.params import DebounceParams, MonitorParams
from mltemplate.report.loadtest import served
from mltemplate.schema import Schema
from tests.conftest import DESCRIPTION, subprocess_env
from tests.monitoring.test_service_log import TOKEN, feedback
from tests.service_client import post_json

SHIFTED_FEATURES = 3


def monitor(repo: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltemplate.monitoring", "check"],
        cwd=repo,
        env=subprocess_env(MONITORING_DB_URL=url),
        capture_output=True,
        text=True,
        timeout=300,
    )


def alerted(output: str) -> set[str]:
    return {line.split()[2].rstrip(":") for line in output.splitlines() if line.startswith("alert: drift ")}


def shift(value: float | None) -> float | None:
    """A numeric feature moved far from its reference; a missing value stays missing."""
    return None if value is None else value * 3 + 1


def met_by_the_model(repo: Path, thresholds: dict[str, float]) -> dict[str, float]:
    """The project's monitor thresholds, each moved to just past what its model scored on the held-out rows
    (metrics.json): the held-out rows answered with their true labels are then healthy, whatever floors the project
    chose for production."""
    scored = read_metrics(repo / "metrics.json")
    return {
        name: scored[name] - 0.05 if ALL_METRICS[name].higher_is_better else scored[name] * 1.05 + 1e-6
        for name in thresholds
        if name in scored
    }


@pytest.mark.integration
def test_healthy_then_shifted_stream_exits_1_naming_the_features(
    repo: Path, records: list[dict[str, Any]], database: str, tmp_path: Path
) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    # Alert on the first breach here; debouncing has its own tests. Enough rows for a verdict from the held-out set.
    params["monitor"] = {
        **params.get("monitor", {}),
        "min_rows": 50,
        "min_labels": 20,
        "debounce": {"breaches": 1, "windows": 1},
        "thresholds": met_by_the_model(repo, params.get("monitor", {}).get("thresholds", {})),
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    metadata = read_model_metadata(repo / "models/metadata.json")
    truth = pd.read_csv(repo / "data/prepared/test.csv")[metadata.input_schema.target].astype(str).tolist()
    env = {"SERVE_WORKERS": "1", "MONITORING_DB_URL": database, "MONITORING_SPOOL_DIR": str(tmp_path / "spool")}
    with served(repo, env={**env, "SERVE_FEEDBACK_TOKEN": TOKEN}) as url:
        ids = [post_json(url, {"records": [record]}).json()["request_id"] for record in records]
        time.sleep(1.5)  # the writer's batches reach the database
        labels = [{"request_id": rid, "label": label} for rid, label in zip(ids, truth, strict=True)]
        reply = feedback(url, {"labels": labels}, TOKEN)
        assert reply.status == 200, reply.text

        healthy = monitor(repo, database)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "monitor: healthy" in healthy.stdout
        assert "quality not judged" not in healthy.stdout
        report = (repo / "monitoring/report.md").read_text()
        assert "## Drift" in report
        assert "## Quality" in report
        assert (repo / "monitoring/report.html").read_text().count("data:image/png;base64") > len(
            metadata.input_schema.features
        )

        shifted = list(metadata.input_schema.numeric[:SHIFTED_FEATURES])
        for record in records:
            post_json(url, {"records": [{**record, **{name: shift(record[name]) for name in shifted}}]})
        time.sleep(1.5)

    drifted = monitor(repo, database)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert set(shifted) <= alerted(drifted.stdout)
    assert "error: " in drifted.stderr
    assert json.loads((repo / "monitoring/alerts.json").read_text())["alerts"]["drift"]


SCHEMA = Schema(numeric=("x",), categorical=(), target="y", positive_class="yes")
METADATA = ModelMetadata.model_validate(
    {**DESCRIPTION, "schema": SCHEMA, "classes": ["no", "yes"], "model_md5": "0" * 32}
)


def seed_log(db_url: str, truth: list[str], predicted: list[str], now: float) -> None:
    db = migrations.open_store(db_url)
    rows = [
        {
            "request_id": f"r{i}",
            "position": 0,
            "ts": now - 60,
            "model_version": "v",
            "features": {"x": float(i % 7)},
            "label": p,
            "probabilities": {"yes": 0.9 if p == "yes" else 0.1, "no": 0.1 if p == "yes" else 0.9},
        }
        for i, p in enumerate(predicted)
    ]
    with db.begin() as connection:
        store.write_predictions(connection, rows)
        connection.execute(
            store.labels.insert(),
            [
                {"request_id": f"r{i}", "position": 0, "label": t, "ts": now, "labeller": "default", "submission": "s"}
                for i, t in enumerate(truth)
            ],
        )


def test_labels_that_make_recall_drop_trip_the_recall_alert(tmp_path: Path) -> None:
    now = time.time()
    truth = ["yes"] * 50 + ["no"] * 50
    predicted = ["yes"] * 20 + ["no"] * 30 + ["no"] * 50  # 20 of 50 positives found: recall 0.4
    url = f"sqlite:///{tmp_path / 'log.db'}"
    seed_log(url, truth, predicted, now)
    reference = check.Reference(features=pd.DataFrame({"x": [float(i % 7) for i in range(100)]}), predicted=predicted)
    params = MonitorParams(
        min_rows=10,
        min_labels=10,
        thresholds={"recall": 0.8, "precision": 0.8},
        debounce=DebounceParams(breaches=1, windows=1),
    )
    outcome = check.run(migrations.open_store(url), reference, METADATA, params, now=now)
    assert [a.describe() for a in outcome.alerts] == ["quality recall: floor 0.4 < 0.8"]


def test_a_single_breach_waits_for_a_second_window_before_it_alerts(tmp_path: Path) -> None:
    now = time.time()
    url = f"sqlite:///{tmp_path / 'log.db'}"
    seed_log(url, ["yes"] * 20, ["no"] * 20, now)
    reference = check.Reference(features=pd.DataFrame({"x": [float(i % 7) for i in range(20)]}), predicted=["no"] * 20)
    params = MonitorParams(
        min_rows=10, min_labels=10, thresholds={"recall": 0.8}, debounce=DebounceParams(breaches=2, windows=3)
    )
    db = migrations.open_store(url)
    first = check.run(db, reference, METADATA, params, now=now)
    second = check.run(db, reference, METADATA, params, now=now + 1)
    assert ([c.name for c in first.pending], first.alerts) == (["recall"], [])
    assert [c.name for c in second.alerts] == ["recall"]


def test_without_a_database_url_the_scheduled_monitor_succeeds_with_a_notice(tmp_path: Path) -> None:
    env = subprocess_env()
    env.pop("MONITORING_DB_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "mltemplate.monitoring", "check", "--if-configured"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("::notice::MONITORING_DB_URL is not set")


def seed_requests(db: Any, columns: codec.Columns, answers: list[tuple[float, list[float], str | None, str]]) -> None:
    """One single-record request per (feature x, outputs, predicted label, true label), answered a minute ago."""
    now = time.time()
    with db.begin() as connection:
        store.write_requests(
            connection,
            [
                codec.encode(f"r{i}", now - 60, "v", columns, [(x,)], None if label is None else [label], [outputs])
                for i, (x, outputs, label, _) in enumerate(answers)
            ],
        )
        connection.execute(
            store.labels.insert(),
            [
                {"request_id": f"r{i}", "position": 0, "label": t, "ts": now, "labeller": "default", "submission": "s"}
                for i, (*_, t) in enumerate(answers)
            ],
        )


def test_multiclass_labels_judge_the_macro_metrics(tmp_path: Path) -> None:
    classes = ["a", "b", "c"]
    metadata = ModelMetadata.model_validate(
        {
            **DESCRIPTION,
            "schema": Schema(numeric=("x",), categorical=(), target="y", positive_class=None, task="multiclass"),
            "classes": classes,
            "model_md5": "0" * 32,
        }
    )
    # The model always answers "a": right on the 10 a's, wrong on the 10 b's and 10 c's.
    answers = [(float(i), [0.8, 0.1, 0.1], "a", classes[i // 10]) for i in range(30)]
    db = migrations.open_store(f"sqlite:///{tmp_path / 'log.db'}")
    seed_requests(db, codec.Columns(("x",), (), tuple(classes)), answers)
    params = MonitorParams(
        min_rows=10,
        min_labels=10,
        thresholds={"accuracy": 0.9, "recall_macro": 0.3},
        debounce=DebounceParams(breaches=1, windows=1),
    )
    reference = check.Reference(features=pd.DataFrame({"x": [float(i) for i in range(30)]}), predicted=["a"] * 30)
    outcome = check.run(db, reference, metadata, params)
    assert [a.describe() for a in outcome.alerts] == ["quality accuracy: floor 0.3333 < 0.9"]
    assert outcome.metrics["recall_macro"] == pytest.approx(1 / 3, abs=1e-6)


def test_regression_labels_judge_errors_against_ceilings_and_predictions_drift_as_numbers(tmp_path: Path) -> None:
    metadata = ModelMetadata.model_validate(
        {
            **DESCRIPTION,
            "schema": Schema(numeric=("x",), categorical=(), target="price", positive_class=None, task="regression"),
            "classes": [],
            "model_md5": "0" * 32,
        }
    )
    # Every answer is 10 too high: rmse = mae = 10. The window's predictions sit far above the reference's.
    answers = [(float(i), [100.0 + i + 10], None, repr(100.0 + i)) for i in range(40)]
    db = migrations.open_store(f"sqlite:///{tmp_path / 'log.db'}")
    seed_requests(db, codec.Columns(("x",), (), ("price",)), answers)
    params = MonitorParams(
        min_rows=10,
        min_labels=10,
        thresholds={"rmse": 5.0, "mae": 20.0},
        debounce=DebounceParams(breaches=1, windows=1),
    )
    reference = check.Reference(
        features=pd.DataFrame({"x": [float(i) for i in range(40)]}), predicted=[float(i) for i in range(40)]
    )
    outcome = check.run(db, reference, metadata, params)
    assert {c.key for c in outcome.alerts} == {"quality:rmse", "drift:prediction"}
    assert "quality rmse: ceiling 10 > 5" in [a.describe() for a in outcome.alerts]
    assert outcome.metrics["mae"] == pytest.approx(10.0)
