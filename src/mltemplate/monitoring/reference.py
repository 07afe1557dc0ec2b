"""The reference test set (data/reference/reference.csv, tracked by reference.dvc): the rows of the original data
the current model held out, carved out of the tracked CSV by the first `make retrain`, so that no retrained model is
trained on them and no production row replaces them. Every retrain scores the current and the new model on them;
the gate's rules (evaluate.thresholds, and evaluate.tolerance against the current model) give its verdict."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mltemplate import gate, metrics
from mltemplate.comparison import Comparison, ComparisonError, Scored, compare, unavailable
from mltemplate.dvcfiles import DVC, md5, read_tracked
from mltemplate.errors import CommandError
from mltemplate.model import TrainedModel
from mltemplate.params import EvaluateParams
from mltemplate.paths import REFERENCE_CSV, REFERENCE_DVC
from mltemplate.predict import predict
from mltemplate.same_rows import row_keys


def read_text(path: Path) -> pd.DataFrame:
    """A CSV as the text it holds (a missing value is ""), so that written back it keeps its bytes."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def carve(raw: pd.DataFrame, held_out: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the tracked CSV's rows (text) into (the rest, the reference set): the reference set is every row whose
    `columns` (features and target) match a held-out row, so a row and its duplicates go the same way."""
    chosen = np.isin(row_keys(raw, columns), row_keys(held_out, columns))
    return raw[~chosen].reset_index(drop=True), raw[chosen].reset_index(drop=True)


def fetch(csv: Path = REFERENCE_CSV, dvc_file: Path = REFERENCE_DVC) -> None:
    """Make the tracked reference set present (`dvc pull` when it is missing or not the tracked version)."""
    tracked = read_tracked(dvc_file)
    if tracked.path.exists() and md5(tracked.path) == tracked.md5:
        return
    pulled = subprocess.run([*DVC, "pull", str(dvc_file)], capture_output=True, text=True, check=False)
    if pulled.returncode != 0 or not tracked.path.exists() or md5(tracked.path) != tracked.md5:
        reason = (pulled.stderr or pulled.stdout).strip().splitlines()
        raise CommandError(
            f"{csv} is not the version {dvc_file} tracks and `dvc pull` could not get it "
            f"({reason[-1] if reason else 'no output'}): a retrain needs the DVC remote (docs/monitoring.md)"
        )


@dataclass(frozen=True)
class Scoring:
    """Both models on the reference set: their metrics, their comparison (differences with paired-bootstrap
    intervals) and the gate's verdict on the new one."""

    rows: int
    current: dict[str, float]
    retrained: dict[str, float]
    comparison: Comparison
    verdict: gate.Verdict

    @property
    def passed(self) -> bool:
        return self.verdict.passed


def _answers(model: TrainedModel, path: Path) -> tuple[np.ndarray, Scored]:
    features, actual = model.schema.read(path)
    return np.asarray(actual), Scored(predict(model, features), tuple(model.classes))


def score(model: TrainedModel, path: Path = REFERENCE_CSV) -> dict[str, float]:
    """The task's metrics of `model` on the reference set (read with the model's own schema)."""
    schema = model.schema
    actual, found = _answers(model, path)
    return metrics.scores(schema.task, actual, found.output, model.classes, schema.positive_class)


def judge(
    current: TrainedModel, retrained: TrainedModel, policy: EvaluateParams, path: Path = REFERENCE_CSV, *, seed: int = 0
) -> Scoring:
    """Score both on the reference set (rows neither was trained on) and compare them there with intervals; the
    verdict holds the new model to the thresholds and to the tolerance against the current one, as a PR's report
    does (slice gaps are the PR report's: the reference set keeps no slice columns)."""
    schema = retrained.schema
    actual, new = _answers(retrained, path)
    _, old = _answers(current, path)
    before = metrics.scores(schema.task, actual, old.output, current.classes, schema.positive_class)
    after = metrics.scores(schema.task, actual, new.output, retrained.classes, schema.positive_class)
    try:
        compared = compare(schema.task, actual, old, new, schema.positive_class, seed=seed)
    except ComparisonError as error:
        compared = unavailable(str(error))
    rules = policy.model_copy(update={"slices": [], "max_slice_gap": {}})
    verdict = gate.judge(after, rules, comparison=compared)
    return Scoring(len(read_text(path)), before, after, compared, verdict)
