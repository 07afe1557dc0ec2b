"""Owns MLflow: where runs go, what a training run logs, and finding the run that produced a model file."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from mltemplate.model import TRUSTED_TYPES, TrainedModel
from mltemplate.params import flatten

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MODEL_MD5_TAG = "model_md5"
DATA_MD5_TAG = "data_md5"
GIT_COMMIT_TAG = "mlflow.source.git.commit"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite file in the working directory (git-ignored)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def git_commit(cwd: Path | None = None) -> str:
    """HEAD's sha, with `-dirty` when tracked files differ; `unknown` outside a git work tree."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


@contextmanager
def run(experiment: str, *, run_name: str | None = None, tags: Mapping[str, str] | None = None) -> Iterator[str]:
    """An MLflow run in `experiment`; yields its id."""
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=dict(tags or {})) as active:
        yield active.info.run_id


def log_training(
    model: TrainedModel,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    example: pd.DataFrame,
    files: list[Path],
    registered_name: str,
) -> None:
    """Params, train metrics, the exact model files, and an MLflow model with signature, registered."""
    mlflow.log_params(flatten(params))
    mlflow.log_metrics(dict(metrics))
    for path in files:
        mlflow.log_artifact(str(path), artifact_path="pipeline")
    signature = infer_signature(example, model.pipeline.predict(example))
    mlflow.sklearn.log_model(
        model.pipeline,
        name="model",
        signature=signature,
        input_example=example,
        registered_model_name=registered_name,
        serialization_format="skops",
        skops_trusted_types=sorted(TRUSTED_TYPES),
        # Listing requirements skips MLflow's inference, which re-imports the model in a subprocess.
        pip_requirements=[f"scikit-learn=={_version('scikit-learn')}", f"skops=={_version('skops')}"],
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def find_run(experiment: str, model_md5: str) -> str | None:
    """The newest run in `experiment` that logged the model file with this md5."""
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.{MODEL_MD5_TAG} = '{model_md5}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def log_evaluation(experiment: str, model_md5: str, metrics: Mapping[str, Any], artifacts: list[Path]) -> str:
    """Add held-out metrics (as `test_<name>`) and plots to the run that trained the model with this md5,
    unless it already has them. Returns what was done, for the log line."""
    run_id = find_run(experiment, model_md5)
    if run_id is None:
        return f"no MLflow run at {tracking_uri()} logged model {model_md5}; held-out metrics not tracked"
    client = MlflowClient()
    scalars = {f"test_{key}": float(value) for key, value in metrics.items() if isinstance(value, int | float)}
    logged = client.get_run(run_id).data.metrics
    if all(logged.get(key) == value for key, value in scalars.items()):
        return f"MLflow run {run_id} already has the held-out metrics"
    for key, value in scalars.items():
        client.log_metric(run_id, key, value)
    for path in artifacts:
        client.log_artifact(run_id, str(path), artifact_path="evaluation")
    return f"held-out metrics logged to MLflow run {run_id}"


PREVIOUS_TAG = "previous_version_of_alias."
"""Model-version tag recording which version an alias pointed to before, so `rollback` can restore it."""


def model_version(name: str, model_md5: str) -> str:
    """The newest registered version of `name` whose run logged the model file with this md5."""
    client = MlflowClient()
    for version in sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: -int(v.version)):
        if version.run_id and client.get_run(version.run_id).data.tags.get(MODEL_MD5_TAG) == model_md5:
            return str(version.version)
    raise LookupError(f"no version of registered model {name!r} was trained on model file {model_md5}")


def promote(name: str, version: str, alias: str) -> str | None:
    """Point `alias` at `version`; returns the version it pointed to before (None if it was unset)."""
    client = MlflowClient()
    try:
        previous: str | None = str(client.get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        previous = None
    if previous == version:
        return previous
    if previous is not None:
        client.set_model_version_tag(name, version, f"{PREVIOUS_TAG}{alias}", previous)
    client.set_registered_model_alias(name, alias, version)
    return previous


def rollback(name: str, alias: str) -> str:
    """Point `alias` back at the version it held before the last `promote`; returns that version."""
    client = MlflowClient()
    current = client.get_model_version_by_alias(name, alias)
    previous = current.tags.get(f"{PREVIOUS_TAG}{alias}")
    if previous is None:
        raise LookupError(f"{name}@{alias} is version {current.version}, which records no earlier version")
    client.set_registered_model_alias(name, alias, previous)
    return str(previous)


def main(argv: list[str] | None = None) -> None:
    """`log` (default): add metrics.json and the plots to the run of the current model; `dvc repro` skips
    `evaluate` when its committed outputs already match (a fresh clone), so `make run` calls this.
    `promote` / `rollback`: move a registry alias (e.g. production) to the current model / back."""
    import argparse

    from mltemplate.cli import CommandError
    from mltemplate.evaluate import PLOT_IMAGES
    from mltemplate.params import load_params
    from mltemplate.paths import METRICS_FILE, MODEL_METADATA

    parser = argparse.ArgumentParser(prog="python -m mltemplate.tracking", description=main.__doc__)
    parser.add_argument("command", nargs="?", choices=["log", "promote", "rollback"], default="log")
    parser.add_argument("--alias", default="production", help="registry alias to move (default: production)")
    args = parser.parse_args(argv)
    name = load_params().name
    mlflow.set_tracking_uri(tracking_uri())
    try:
        metadata = json.loads(MODEL_METADATA.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"{MODEL_METADATA} not found: run `make run` first") from None
    try:
        if args.command == "promote":
            version = model_version(name, metadata["model_md5"])
            previous = promote(name, version, args.alias)
            print(f"tracking: {name}@{args.alias} -> version {version} (was {previous or 'unset'})")
        elif args.command == "rollback":
            print(f"tracking: {name}@{args.alias} rolled back to version {rollback(name, args.alias)}")
        else:
            metrics = json.loads(METRICS_FILE.read_text(encoding="utf-8"))
            artifacts = [METRICS_FILE, *PLOT_IMAGES.values()]
            print(f"tracking: {log_evaluation(name, metadata['model_md5'], metrics, artifacts)}")
    except (LookupError, mlflow.exceptions.MlflowException) as error:
        raise CommandError(str(error).splitlines()[0]) from None


if __name__ == "__main__":
    import sys

    from mltemplate.cli import run as run_command

    sys.exit(run_command(main))
