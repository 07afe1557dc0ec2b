"""Every file the project reads or writes, named once and spelled as in dvc.yaml (relative to the repo root)."""

from pathlib import Path

PARAMS_FILE = Path("params.yaml")
DATA_DVC = Path("data.dvc")
DVC_LOCK = Path("dvc.lock")

PREPARED_DIR = Path("data/prepared")
TRAIN_CSV = PREPARED_DIR / "train.csv"
TEST_CSV = PREPARED_DIR / "test.csv"

MODEL_DIR = Path("models")
MODEL_FILE = MODEL_DIR / "model.skops"
MODEL_METADATA = MODEL_DIR / "metadata.json"
RELEASE_FILE = MODEL_DIR / "release.json"
"""Written by `make bento` / `make serve` and shipped in the Bento; git-ignored, not a DVC output."""

METRICS_FILE = Path("metrics.json")
PLOTS_DIR = Path("plots")
"""Each plot's points and PNG (mltemplate.plots names them)."""
EXAMPLE_FILE = Path("examples/predict.json")
"""A request body for POST /predict: the OpenAPI example, the smoke test's and the load runs' body."""

REFERENCE_CSV = Path("data/reference/reference.csv")
"""The reference test set: held-out rows of the original data, carved out by the first `make retrain`, never trained
on and never replaced by production rows; every retrain scores the current and the new model on it."""
REFERENCE_DVC = Path("reference.dvc")
"""Tracks REFERENCE_CSV as data.dvc tracks the data."""
RETRAIN_DIR = Path("build/retrain")
"""What `make retrain` hands to the pull request: summary.md (its body), summary.json, and files/ (the changed data
files, the only ones the retrain workflow commits)."""

CONTRACT_FILE = Path("data/contract.yaml")
"""The columns, types and known categories the raw CSV must have; written by `data track`, checked by prepare."""

MONITORING_DIR = Path("monitoring")
"""The local prediction log, its spool and the monitor's reports (git-ignored)."""
MONITORING_DB_URL = f"sqlite:///{MONITORING_DIR / 'predictions.db'}"
"""Where the prediction log lives unless the environment variable MONITORING_DB_URL names another database."""
SPOOL_DIR = MONITORING_DIR / "spool"
"""Records the service could not write to the database yet; written back when it answers again."""
MONITOR_REPORT_HTML = MONITORING_DIR / "report.html"
MONITOR_REPORT_MD = MONITORING_DIR / "report.md"
MONITOR_ALERTS = MONITORING_DIR / "alerts.json"
"""The kinds of alert the last `make monitor` raised, for the workflow that opens and closes issues."""
