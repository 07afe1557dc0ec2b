"""`python -m mltemplate.registry [log|promote|rollback]`: the registry's command line."""

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
from mltemplate.registry import aliases, runs


def main(argv: list[str] | None = None) -> None:
    """`log` (default): add metrics.json and the plots to the run of the current model; `dvc repro` skips
    `evaluate` when its committed outputs already match (a fresh clone), so `make run` calls this.
    `promote` / `rollback`: move a registry alias (default champion, which releases set) to the current model / back."""
    parser = argparse.ArgumentParser(prog="python -m mltemplate.registry", description=main.__doc__)
    parser.add_argument("command", nargs="?", choices=["log", "promote", "rollback"], default="log")
    parser.add_argument(
        "--alias", default=aliases.CHAMPION, help=f"registry alias to move (default: {aliases.CHAMPION})"
    )
    args = parser.parse_args(argv)
    name = load_params().name
    model_md5 = read_model_metadata().model_md5
    mlflow.set_tracking_uri(runs.tracking_uri())
    try:
        if args.command == "promote":
            version = aliases.model_version(name, model_md5)
            previous = aliases.promote(name, version, args.alias)
            print(f"registry: {name}@{args.alias} -> version {version} (was {previous or 'unset'})")
        elif args.command == "rollback":
            print(f"registry: {name}@{args.alias} rolled back to version {aliases.rollback(name, args.alias)}")
        else:
            artifacts = [METRICS_FILE, *(plot.image for plot in PLOTS if plot.image.is_file())]
            print(f"registry: {runs.log_evaluation(name, model_md5, read_metrics(), artifacts)}")
    except (LookupError, mlflow.exceptions.MlflowException) as error:
        raise CommandError(str(error).splitlines()[0]) from None


if __name__ == "__main__":
    sys.exit(run(main))
