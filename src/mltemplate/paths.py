"""Every file the pipeline reads or writes, named once and spelled as in dvc.yaml (relative to the repo root)."""

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

METRICS_FILE = Path("metrics.json")
PLOTS_DIR = Path("plots")
