"""What MLflow knows of the model at HEAD (the run that logged it, its registered version), added to the release
that mltemplate.identity builds. Writes models/release.json (`python -m mltemplate.release.provenance write`);
`version` and `name` print the Bento tag's parts."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from mltemplate import atomic
from mltemplate.errors import CommandError, run
from mltemplate.identity import Release, head_version, new_release
from mltemplate.model import ModelError, TrainedModel, load
from mltemplate.params import Params, load_params
from mltemplate.paths import DVC_LOCK, RELEASE_FILE


def _run_start(run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    from mltemplate.registry import runs

    start_ms = MlflowClient(tracking_uri=runs.tracking_uri()).get_run(run_id).info.start_time
    return dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def _find_run(experiment: str, model_md5: str) -> str | None:
    from mltemplate.registry import runs

    if _no_store(runs.tracking_uri()):
        return None
    return runs.find_run(experiment, model_md5)


def _no_store(uri: str) -> bool:
    """A SQLite store that does not exist: asking MLflow would create an empty one."""
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


def _registry_version(name: str, model_md5: str) -> str | None:
    """The registered version of this model file when an MLflow server is configured (the image names it)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri or _no_store(uri):
        return None  # the default local store is this machine's history, not a registry an image can name
    import mlflow

    from mltemplate.registry import aliases

    mlflow.set_tracking_uri(uri)
    try:
        return aliases.model_version(name, model_md5)
    except LookupError:
        return None


def collect(repo: Path = Path(), *, experiment: str, trained: TrainedModel, params: Params | None = None) -> Release:
    """The release of `trained` at HEAD of `repo`, with its MLflow run when one logged this model file (trained
    when that run started) and its registered version; keyed by `params` (those that made it) when given."""
    head_version(repo)  # a release is versioned by its commit: CommandError outside git
    model_md5 = trained.metadata.model_md5
    run_id = _find_run(experiment, model_md5)
    return new_release(
        trained.metadata,
        repo=repo,
        params=params,
        mlflow_run_id=run_id,
        trained_at=_run_start(run_id) if run_id else None,
        registry_version=_registry_version(experiment, model_md5),
    )


def write(path: Path = RELEASE_FILE) -> Release:
    """Check the model against its metadata and dvc.lock, then write its release file."""
    try:
        trained = load(lock=DVC_LOCK)
    except ModelError as error:
        raise CommandError(str(error)) from None
    params = load_params()
    release = collect(Path(), experiment=params.name, trained=trained, params=params)
    atomic.write_text(path, release.to_json())
    return release


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.release.provenance", description=__doc__)
    parser.add_argument("command", choices=["write", "version", "name"])
    args = parser.parse_args(argv)
    if args.command == "version":
        print(head_version())
    elif args.command == "name":
        print(load_params().name)
    else:
        release = write()
        print(f"{RELEASE_FILE}: {release.version} (model md5 {release.model_md5}, run {release.mlflow_run_id})")


if __name__ == "__main__":
    sys.exit(run(main))
