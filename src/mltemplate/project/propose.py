"""The params.yaml `make init CSV=... TARGET=...` proposes for a CSV: the task from the target column, the positive
class of a binary target, the categorical columns, id columns to drop, and chance-level thresholds for the gate and
the monitor (placeholders: a model that learnt nothing fails them; raise them to what the use case needs). Reads
nothing itself (it is given the CSV's cells as text) and returns the file's text, comments included."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from mltemplate.contract import infer
from mltemplate.errors import CommandError
from mltemplate.metrics import Task
from mltemplate.params import parse_params, read_yaml

MAX_CLASSES = 10
"""A numeric target with at most this many distinct integers is a class label; with more, a quantity (regression)."""
POSITIVE_WORDS = ("1", "true", "yes", "y", "positive", "pos")
"""Labels that name the positive class themselves; otherwise the rarer class is the positive one (churn, fraud)."""
ID_NAME = re.compile(r"(^|_)id$", re.IGNORECASE)


@dataclass(frozen=True)
class Proposal:
    """What was read from the CSV, and why: `reasons` are printed by `make init`."""

    task: Task
    positive_class: str | None
    categorical: list[str]
    drop: list[str]
    thresholds: dict[str, float]
    reasons: list[str]


def _is_integer(values: pd.Series) -> bool:
    numbers = pd.to_numeric(values, errors="coerce")
    return bool(numbers.notna().all() and (numbers == numbers.round()).all())


def _task(target: pd.Series, numeric: bool) -> tuple[Task, str]:
    distinct = sorted(set(target))
    if len(distinct) < 2:
        raise CommandError(f"the target column holds a single value {distinct}: nothing to learn")
    if len(distinct) == 2:
        return "binary", f"two values {distinct}: binary"
    if numeric and not (_is_integer(target) and len(distinct) <= MAX_CLASSES):
        return "regression", f"numbers with {len(distinct)} distinct values: regression"
    return "multiclass", f"{len(distinct)} classes: multiclass"


def _positive(target: pd.Series) -> tuple[str, str]:
    counts = target.value_counts()
    named = [label for label in sorted(counts.index) if label.lower() in POSITIVE_WORDS]
    if named:
        return named[0], f"positive class {named[0]!r}: it names itself"
    rarer = str(min(sorted(counts.index), key=lambda label: counts[label]))
    return rarer, f"positive class {rarer!r}: the rarer class ({counts[rarer]} of {len(target)} rows)"


def _thresholds(task: Task, classes: int) -> dict[str, float]:
    """The task's chance level: what a model that learnt nothing scores (floors rounded down, ceilings up)."""
    if task == "binary":
        return {"roc_auc": 0.5, "log_loss": math.ceil(math.log(2) * 1e4) / 1e4}
    if task == "multiclass":
        return {"accuracy": math.floor(1e4 / classes) / 1e4, "log_loss": math.ceil(math.log(classes) * 1e4) / 1e4}
    return {"r2": 0.0}


def propose(raw: pd.DataFrame, target: str) -> Proposal:
    """Read the CSV's cells (text, as prepare reads them) and propose the data and threshold params for `target`."""
    contract = infer(raw)
    labels = raw[target].dropna().astype(str).str.strip()
    task, why_task = _task(labels, contract.columns[target].kind == "number")
    reasons = [f"task {task}: target {target!r} has {why_task}"]
    positive = None
    if task == "binary":
        positive, why_positive = _positive(labels)
        reasons.append(why_positive)
    drop = [
        name
        for name, column in contract.columns.items()
        if name != target
        and raw[name].notna().all()
        and raw[name].nunique() == len(raw)
        and (column.kind == "category" or ID_NAME.search(name))
    ]
    if drop:
        reasons.append(f"dropped {drop}: a different value on every row (an id) tells the model nothing")
    categorical = [n for n, c in contract.columns.items() if c.kind == "category" and n != target and n not in drop]
    reasons.append(f"categorical columns {categorical}: they hold text" if categorical else "no categorical column")
    thresholds = _thresholds(task, labels.nunique())
    reasons.append(f"thresholds {thresholds}: chance level, placeholders to raise (params.yaml says so)")
    return Proposal(task, positive, categorical, drop, thresholds, reasons)


HYPERPARAMETERS = {
    "classification": {
        "logistic_regression": {"C": 1.0, "max_iter": 1000},
        "random_forest": {"n_estimators": 200, "max_depth": 8, "min_samples_leaf": 1, "n_jobs": 1},
        "hist_gradient_boosting": {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 31},
    },
    "regression": {
        "ridge": {"alpha": 1.0},
        "random_forest": {"n_estimators": 200, "max_depth": 8, "min_samples_leaf": 1, "n_jobs": 1},
        "hist_gradient_boosting": {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 31},
    },
}


def _flow(value: object) -> str:
    """A value as one line of YAML: `[a, b]`, `{roc_auc: 0.5}`, `churned`, `'1'`."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).removesuffix("...\n").strip()


def _block(mapping: dict[str, object], indent: int) -> str:
    text = yaml.safe_dump(mapping, default_flow_style=False, sort_keys=False, width=1000)
    return "".join(" " * indent + line + "\n" for line in text.splitlines())


def params_text(p: Proposal, *, name: str, raw_path: Path, target: str) -> str:
    """The proposed params.yaml, commented; validated as `make run` will read it."""
    kind = "regression" if p.task == "regression" else "classification"
    estimator = next(iter(HYPERPARAMETERS[kind]))
    positive = f"  positive_class: {_flow(p.positive_class)}  # the class precision / recall / F1 / ROC are about\n"
    text = f"""# Proposed by `make init` from {raw_path.as_posix()}: read it, change what you know better, commit it.
# Everything that changes the model lives here; change it in a PR (or `dvc exp run -S key=value`) and the PR comment
# compares the result with main. Validated by src/mltemplate/params.py; docs/pipeline.md lists the tasks.
name: {name}  # MLflow experiment and registered model, Bento model and service
seed: 42      # random_state of the split and of the estimator

data:
  raw: {raw_path.as_posix()}  # the CSV that data.dvc tracks
  target: {_flow(target)}
{positive if p.positive_class is not None else ""}  task: {p.task}  # binary | multiclass | regression: from the target
  features: null  # null: every column except target and drop
  categorical: {_flow(p.categorical)}  # columns holding text, one-hot encoded; missing values are fine in any feature
  drop: {_flow(p.drop)}  # columns to ignore: ids (a different value on every row)

split:
  test_size: 0.25

model:
  estimator: {estimator}
  hyperparameters:  # per estimator of the task; only the chosen one is used
{_block(HYPERPARAMETERS[kind], 4)}
evaluate:
  # PLACEHOLDERS at chance level (what a model that learnt nothing scores): the gate fails only such a model. Raise
  # them to what the use case needs once you know what the model reaches; a floor for higher-is-better metrics, a
  # ceiling for lower-is-better ones (log_loss, rmse, mae, mape).
  thresholds: {_flow(p.thresholds)}
  tolerance: 0.02  # largest drop of a higher-is-better metric against the base branch a PR may show
  slices: []       # columns (features or dropped ones) whose groups are scored apart
  max_slice_gap: {{}}  # per metric, the largest gap between groups of a slice column, e.g. {{recall: 0.1}}

monitor:           # `make monitor` over the production prediction log (docs/monitoring.md); not a pipeline input
  window: 24h
  min_rows: 100
  min_labels: 30
  drift:
    numeric: {{method: ks, threshold: 0.05}}
    categorical: {{method: chi2, threshold: 0.05}}
    prediction: {{method: chi2, threshold: 0.05}}
    bonferroni: true
  thresholds: {_flow(p.thresholds)}  # PLACEHOLDERS at chance level, on production labels
  debounce:
    breaches: 2
    windows: 3
"""
    parse_params(read_yaml(text), source=Path("params.yaml (proposed)"))
    return text
