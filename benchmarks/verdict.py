"""The honest verdict's cost: what scoring the base's model on the same rows (its reproduction from the base
commit, then 1,000 paired bootstrap resamples) adds to `make report`, on the default data set and on 500,000 rows,
against `make report --no-compare` in the same repositories (the baseline)."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.conftest import copy_repo, subprocess_env

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def _run(repo: Path, *args: str, **env: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(list(args), cwd=repo, env=subprocess_env(**env), capture_output=True, text=True)
    if result.returncode not in (0, 2):  # 2: make's code for a report whose gate failed
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def _params(repo: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    path = repo / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def orders(repo: Path) -> None:
    """500,000 rows of orders with a category and missing values (the template's large-data test)."""
    rng = np.random.default_rng(5)
    n = 500_000
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, n).round(2),
            "items": rng.integers(1, 12, n),
            "account_age_days": rng.integers(0, 3650, n),
            "channel": rng.choice(["web", "app", "phone", "store"], n, p=[0.5, 0.3, 0.1, 0.1]),
        }
    )
    score = 0.01 * (frame["amount"] - 100) - 0.001 * frame["account_age_days"] + 0.8 * (frame["channel"] == "phone")
    frame["fraud"] = np.where(score + rng.normal(0, 1, n) > 1.2, "fraud", "legit")
    frame.to_csv(repo / "data" / "raw" / "orders.csv", index=False, lineterminator="\n")
    _run(repo, sys.executable, "-m", "mltemplate.pipeline.data", "track", "data/raw/orders.csv")

    def use(raw: dict) -> None:  # type: ignore[type-arg]
        raw["name"] = "order-fraud"
        raw["data"] = {
            "raw": "data/raw/orders.csv",
            "target": "fraud",
            "positive_class": "fraud",
            "task": "binary",
            "features": None,
            "categorical": ["channel"],
            "drop": [],
        }
        raw["model"] = {"estimator": "logistic_regression", "hyperparameters": {"logistic_regression": {"C": 1.0}}}
        raw["evaluate"] = {"thresholds": {}, "tolerance": 0.02, "slices": [], "max_slice_gap": {}}
        raw["monitor"] = {**raw["monitor"], "thresholds": {}}

    _params(repo, use)


def measure(root: Path, label: str, data: Callable[[Path], None] | None) -> list[str]:
    repo = copy_repo(root / label)
    _run(repo, sys.executable, "-m", "mltemplate.pipeline.data")
    if data is not None:
        data(repo)
    _run(repo, "dvc", "repro")
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "--allow-empty", "-m", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "checkout", "-qb", "pr"], cwd=repo, check=True)
    _params(repo, lambda raw: raw["model"]["hyperparameters"].setdefault("logistic_regression", {}).update(C=0.5))
    _run(repo, "dvc", "repro")
    subprocess.run([*GIT, "commit", "-qam", "pr"], cwd=repo, check=True)
    (repo / ".venv").mkdir(exist_ok=True)
    (repo / ".venv" / ".synced").touch()
    env = {"BASE": "main"}
    without = statistics.median(
        _run(repo, "make", "report", "RUN=", "REPORT_FLAGS=--no-load --no-compare", **env) for _ in range(2)
    )
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)  # as in CI: the base's model is reproduced
    fresh = _run(repo, "make", "report", "RUN=", "REPORT_FLAGS=--no-load", **env)
    cached = _run(repo, "make", "report", "RUN=", "REPORT_FLAGS=--no-load", **env)  # the base from the DVC cache
    rows = len(pd.read_csv(repo / "data" / "prepared" / "test.csv", usecols=[0]))
    return [
        f"| {label} | {rows:,} | {without:.1f} s | {fresh:.1f} s (+{fresh - without:.1f} s) "
        f"| {cached:.1f} s (+{cached - without:.1f} s) |"
    ]


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="bench-verdict-") as tmp:
        rows = measure(Path(tmp), "default (breast cancer)", None) + measure(Path(tmp), "500,000 orders", orders)
    return "\n".join(
        [
            "## The verdict: the base's model on the same rows",
            "",
            "`make report --no-load` on a PR that changes a hyperparameter, against `make report --no-load "
            "--no-compare` (the baseline: the same report without the base's model) in the same repository. "
            "Fresh: no DVC cache, as in CI, so the base's model is reproduced from its commit (data, prepare, "
            "train); cached: the base's model from the local DVC cache. The comparison itself is 1,000 paired "
            "bootstrap resamples on at most 20,000 shared rows.",
            "",
            "| Data set | Held-out rows | Report without the comparison | With it, base reproduced | With it, "
            "base cached |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            "Target: the comparison adds at most 30 s on 500,000 rows.",
            "",
        ]
    )
