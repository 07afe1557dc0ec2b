"""MLflow runs: where they go, what a training run logs, and finding the run that produced a model file."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from mltemplate.comparison import Comparison
from mltemplate.dotted import flatten
from mltemplate.model import TRUSTED
from mltemplate.model_metadata import ModelMetadata

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MODEL_MD5_TAG = "model_md5"
DATA_MD5_TAG = "data_md5"
GIT_COMMIT_TAG = "mlflow.source.git.commit"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite file in the working directory (git-ignored)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


@contextmanager
def run(experiment: str, *, run_name: str | None = None, tags: Mapping[str, str] | None = None) -> Iterator[str]:
    """An MLflow run in `experiment`; yields its id."""
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=dict(tags or {})) as active:
        yield active.info.run_id


def log_training(
    pipeline: Pipeline,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    example: pd.DataFrame,
    files: list[Path],
    registered_name: str,
) -> None:
    """The params that made the model (Params.identity), train metrics, the exact model files, and an MLflow model
    with signature, registered."""
    mlflow.log_params(flatten(params))
    mlflow.log_metrics(dict(metrics))
    for path in files:
        mlflow.log_artifact(str(path), artifact_path="pipeline")
    signature = infer_signature(example, pipeline.predict(example))
    mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=signature,
        input_example=example,
        registered_model_name=registered_name,
        serialization_format="skops",
        skops_trusted_types=sorted(TRUSTED),
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


def log_comparison(model: ModelMetadata, comparison: Comparison, *, against: str = "base") -> str:
    """Add the comparison with `against` (the PR's base, or the release in production) to the run that trained
    `model`: per metric the difference and its interval's ends (`<against>_diff_<metric>`, `..._low`, `..._high`)
    and the rows compared. Returns what was done, for the log line."""
    run_id = find_run(model.name, model.model_md5)
    if run_id is None:
        return f"no MLflow run at {tracking_uri()} logged model {model.model_md5}; the comparison is not tracked"
    client = MlflowClient()
    values = {f"{against}_rows_compared": float(comparison.rows)}
    for d in comparison.differences:
        values[f"{against}_diff_{d.metric}"] = d.delta
        if d.measurable:
            values[f"{against}_diff_{d.metric}_low"] = d.low
            values[f"{against}_diff_{d.metric}_high"] = d.high
    for key, value in values.items():
        client.log_metric(run_id, key, value)
    return f"the comparison with the {against} is in MLflow run {run_id}"
