"""`make retrain` end to end on a data set of our own (real `dvc repro`, a SQLite prediction log): an honest retrain
adds what it may, carves the reference set and passes; one whose pull request never lands leaves its records to the
next; a merged one leaves nothing to add twice; and a poisoning flood adds at most the cap, says so, and fails on the
reference set."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mltemplate.monitoring import codec, labels, migrations, store
from mltemplate.monitoring.feedback import Resolved
from tests.conftest import copy_repo, run, subprocess_env

pytestmark = pytest.mark.integration

ROWS = 800
NUMERIC = ("x1", "x2", "x3")
COLUMNS = codec.Columns(NUMERIC, ("kind",), ("neg", "pos"))


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """Two classes a line apart in x1 + x2, a category that matters a little, an id column that does not."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(0, 1, n).round(4) for name in NUMERIC})
    frame["kind"] = rng.choice(["a", "b"], n)
    score = frame["x1"] + frame["x2"] + 0.3 * (frame["kind"] == "a") + rng.normal(0, 0.5, n)
    frame["y"] = np.where(score > 0, "pos", "neg")
    frame.insert(0, "id", [f"row{i}" for i in range(n)])
    return frame


PARAMS = {
    "name": "retrain-demo",
    "data": {
        "raw": "data/raw/demo.csv",
        "target": "y",
        "positive_class": "pos",
        "task": "binary",
        "features": None,
        "categorical": ["kind"],
        "drop": ["id"],
    },
    # The task's estimator and hyperparameters too: the project's may be of another task.
    "model": {"estimator": "logistic_regression", "hyperparameters": {"logistic_regression": {"max_iter": 1000}}},
    "evaluate": {"thresholds": {"accuracy": 0.6}, "tolerance": 0.05, "slices": [], "max_slice_gap": {}},
    "monitor": {"thresholds": {}},
    "retrain": {"max_new_share": 0.25, "trusted_labellers": ["default"]},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the template over the synthetic data, trained and committed."""
    repo = copy_repo(tmp_path_factory.mktemp("retrain") / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (repo / params["data"]["raw"]).unlink(missing_ok=True)
    (repo / "data/raw/demo.csv").write_text(synthetic(ROWS, 0).to_csv(index=False, lineterminator="\n"))
    run([sys.executable, "-m", "mltemplate.pipeline.data", "track", "data/raw/demo.csv"], cwd=repo)
    for section, value in PARAMS.items():
        # A project's params.yaml may leave a section to its defaults.
        params[section] = {**params.get(section, {}), **value} if isinstance(value, dict) else value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro"], cwd=repo)
    commit(repo, "the synthetic data and its model")
    return repo


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], cwd=repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message], cwd=repo)


@pytest.fixture
def repo(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "repo", symlinks=True))


def log(url: str, rows: pd.DataFrame, *, labeller: str, offset: int) -> None:
    """Log each row as a one-record answer and label it with its `y`, as `labeller`."""
    db = migrations.open_store(url)
    ids = [f"r{offset + i}" for i in range(len(rows))]
    with db.begin() as connection:
        store.write_requests(
            connection,
            [
                codec.encode(
                    rid,
                    float(offset + i),
                    "v",
                    COLUMNS,
                    [(*(row[n] for n in NUMERIC), row["kind"])],
                    ["pos"],
                    [[0.5, 0.5]],
                )
                for i, (rid, (_, row)) in enumerate(zip(ids, rows.iterrows(), strict=True))
            ],
        )
    truth = [Resolved(rid, 0, label) for rid, label in zip(ids, rows["y"], strict=True)]
    labels.store_labels(db, truth, labeller=labeller, submission=f"{labeller}-{offset}")
    db.dispose()


def retrain(repo: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltemplate.monitoring", "retrain"],
        cwd=repo,
        env=subprocess_env(MONITORING_DB_URL=url),
        capture_output=True,
        text=True,
        timeout=900,
    )


def summary(repo: Path) -> dict[str, Any]:
    return dict(json.loads((repo / "build/retrain/summary.json").read_text()))


def test_an_honest_retrain_adds_what_it_may_and_a_failed_pull_request_leaves_its_records_to_the_next(
    repo: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    fresh = synthetic(130, 1)
    log(url, fresh, labeller="default", offset=0)
    log(url, synthetic(20, 2), labeller="mallory", offset=1000)  # not a trusted labeller
    log(url, pd.DataFrame(fresh.iloc[:5]).assign(kind="z"), labeller="default", offset=2000)  # outside the contract
    data = pd.read_csv(repo / "data/raw/demo.csv")
    log(url, data.iloc[-5:], labeller="default", offset=3000)  # rows the data holds

    first = retrain(repo, url)
    assert first.returncode == 0, first.stdout + first.stderr
    done = summary(repo)
    assert done["carved"]
    assert done["passed"], done["verdict"]
    assert done["added"] == 130 <= done["cap"]
    assert done["by_source"].keys() == {"default"}
    assert done["untrusted"] == {"mallory": 20}
    assert done["dropped"] == {
        "outside the data contract": 5,
        "features the data or the reference set already holds": 5,
    }
    body = (repo / "build/retrain/summary.md").read_text()
    assert "Reference verdict: the retrained model passes" in body
    assert "Not trusted (retrain.trusted_labellers): mallory 20" in body
    reference = pd.read_csv(repo / "data/reference/reference.csv")
    after = pd.read_csv(repo / "data/raw/demo.csv")
    assert len(after) == ROWS - len(reference) + 130
    assert not set(reference["id"]) & set(after["id"].dropna())  # never trained on
    handed = sorted(
        p.relative_to(repo / "build/retrain/files").as_posix()
        for p in (repo / "build/retrain/files").rglob("*")
        if p.is_file()
    )
    assert {"data.dvc", "reference.dvc", "dvc.lock", "metrics.json"} <= set(handed)
    assert all(path.startswith("plots/") or "/" not in path or path == "examples/predict.json" for path in handed)

    # The pull request failed: main never got the data. The next retrain finds the same records.
    run(["git", "checkout", "-q", "--", "."], cwd=repo)
    run(["git", "clean", "-qfd"], cwd=repo)
    run(["dvc", "checkout", "-q"], cwd=repo)
    (repo / "data/reference/reference.csv").unlink(missing_ok=True)
    again = retrain(repo, url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert summary(repo)["added"] == 130

    # Merged: nothing is added twice.
    commit(repo, "the retrain's pull request, merged")
    last = retrain(repo, url)
    assert last.returncode == 1
    assert "no labelled production records that the data could take" in last.stderr


def test_a_poisoning_flood_adds_at_most_the_cap_says_so_and_fails_on_the_reference_set(
    repo: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    rng = np.random.default_rng(7)
    flood = synthetic(3000, 3)
    flood["x1"] = rng.uniform(1.0, 3.0, len(flood)).round(4)  # clearly positive rows ...
    flood["y"] = "neg"  # ... labelled negative, each unique, all within the contract, by a trusted labeller
    log(url, flood, labeller="default", offset=0)

    result = retrain(repo, url)
    assert result.returncode == 0, result.stdout + result.stderr
    done = summary(repo)
    assert done["added"] == done["cap"] == int(0.25 * done["rows_before"])
    assert done["eligible"] == 3000
    assert not done["passed"]
    assert any(rule["kind"] == "tolerance" and not rule["passed"] for rule in done["verdict"])
    assert done["agreement"] < 0.5  # the current model disagrees with the new labels
    body = (repo / "build/retrain/summary.md").read_text()
    assert "Reference verdict: the retrained model FAILS" in body
    assert f"{3000 - done['cap']:,} eligible rows were left out" in body
    assert "the retrained model FAILS its verdict" in result.stdout
