"""Stage `train`: fit the configured Pipeline on data/prepared/train.csv, save models/model.skops and
models/metadata.json, and log the run to MLflow."""

from __future__ import annotations

import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, root_mean_squared_error
from sklearn.pipeline import Pipeline

from mltemplate import git
from mltemplate.canonical import canonicalise
from mltemplate.estimators import build_pipeline, make_estimator
from mltemplate.features import derive_step
from mltemplate.model import md5, save
from mltemplate.params import ModelParams, Params, load_params
from mltemplate.paths import MODEL_DIR, MODEL_FILE, MODEL_METADATA, TRAIN_CSV
from mltemplate.registry import runs
from mltemplate.schema import Schema


def train(features: pd.DataFrame, labels: pd.Series, schema: Schema, p: ModelParams, *, seed: int) -> Pipeline:
    """Fit the project's derived columns (features.py) + preprocessing + the chosen estimator; the canonical model
    (`canonical.canonicalise`)."""
    estimator = make_estimator(p.estimator, p.selected, seed=seed, task=schema.task)
    derive = derive_step()
    pipeline = build_pipeline(
        numeric=[*schema.numeric, *(derive.numeric if derive else ())],
        categorical=[*schema.categorical, *(derive.categorical if derive else ())],
        estimator=estimator,
        derive=derive,
    )
    pipeline.fit(features, labels.astype(str) if schema.classification else labels.astype("float64"))
    # What the model file will hold, so the metrics logged here are those of the saved model.
    return canonicalise(pipeline)


def describe(params: Params, features: pd.DataFrame, schema: Schema, *, data_md5: str) -> dict[str, object]:
    """What the model is and was made from, and what it accepts: the features that had missing values in training
    (the pipeline imputes them, so the service accepts null there) and the known values of each category.
    Deterministic, so dvc.lock stays put for an unchanged model."""
    train_rows = len(features)
    return {
        "nullable": [name for name in schema.features if features[name].isna().any()],
        "categories": {name: sorted(str(v) for v in features[name].dropna().unique()) for name in schema.categorical},
        "name": params.name,
        "estimator": params.model.estimator,
        "hyperparameters": params.model.selected,
        "seed": params.seed,
        "data": {"path": params.data.raw.as_posix(), "md5": data_md5, "train_rows": train_rows},
        "libraries": {name: version(name) for name in ("scikit-learn", "skops", "numpy", "pandas")},
    }


def train_metrics(pipeline: Pipeline, features: pd.DataFrame, labels: pd.Series) -> dict[str, float]:
    """Fit quality on the training rows; a large gap to the held-out metrics flags overfitting."""
    if not hasattr(pipeline, "classes_"):
        return {"train_rmse": float(root_mean_squared_error(labels, pipeline.predict(features)))}
    probabilities = pipeline.predict_proba(features)
    return {
        "train_accuracy": float(accuracy_score(labels, pipeline.classes_[probabilities.argmax(axis=1)])),
        "train_log_loss": float(log_loss(labels, probabilities, labels=pipeline.classes_)),
    }


def main() -> None:
    params = load_params()
    header = pd.read_csv(TRAIN_CSV, nrows=0).columns
    schema = Schema.from_columns(list(header), params.data)
    features, labels = schema.read(TRAIN_CSV)
    pipeline = train(features, labels, schema, params.model, seed=params.seed)
    data_md5 = md5(params.data.raw)
    description = describe(params, features, schema, data_md5=data_md5)
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    # Staged beside the outputs: MLflow logs the exact files, and they replace the old ones only on success.
    with tempfile.TemporaryDirectory(dir=MODEL_DIR, prefix=".staging-") as staging:
        staged_model, staged_metadata = Path(staging) / MODEL_FILE.name, Path(staging) / MODEL_METADATA.name
        metadata = save(pipeline, schema, description, model_path=staged_model, metadata_path=staged_metadata)
        model_md5 = metadata.model_md5
        tags = {
            runs.GIT_COMMIT_TAG: git.commit(),
            runs.DATA_MD5_TAG: data_md5,
            runs.MODEL_MD5_TAG: model_md5,
            "estimator": params.model.estimator,
        }
        with runs.run(params.name, run_name=params.model.estimator, tags=tags) as run_id:
            runs.log_training(
                pipeline,
                params=params.identity(),
                metrics=train_metrics(pipeline, features, labels),
                example=features.head(3),
                files=[staged_model, staged_metadata],
                registered_name=params.name,
            )
        staged_model.replace(MODEL_FILE)
        staged_metadata.replace(MODEL_METADATA)
    print(f"train: {params.model.estimator} on {len(features)} rows -> {MODEL_FILE} (md5 {model_md5}, run {run_id})")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
