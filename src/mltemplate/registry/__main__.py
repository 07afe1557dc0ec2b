"""`python -m mltemplate.registry [log]`: add the held-out metrics (metrics.json) and the plots to the MLflow run
that trained the current model. `make run` calls it once after `dvc repro`: the evaluate stage does not log to
MLflow, and `dvc repro` skips it when its committed outputs already match (a fresh clone). The `champion` alias is
moved by releases only (`make promote`, `make rollback`: mltemplate.release)."""

from __future__ import annotations

import argparse
import sys

import mlflow

from mltemplate.errors import CommandError, run
from mltemplate.metrics import read_metrics
from mltemplate.model_metadata import read_model_metadata
from mltemplate.params import load_params
from mltemplate.paths import METRICS_FILE
from mltemplate.plots import PLOTS
from mltemplate.registry import runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.registry", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["log"], default="log")
    parser.parse_args(argv)
    name = load_params().name
    model_md5 = read_model_metadata().model_md5
    mlflow.set_tracking_uri(runs.tracking_uri())
    artifacts = [METRICS_FILE, *(plot.image for plot in PLOTS if plot.image.is_file())]
    try:
        print(f"registry: {runs.log_evaluation(name, model_md5, read_metrics(), artifacts)}")
    except mlflow.exceptions.MlflowException as error:
        raise CommandError(str(error).splitlines()[0]) from None


if __name__ == "__main__":
    sys.exit(run(main))
