"""The release of the model at HEAD: version, git commit, model and data md5, MLflow run, times. Writes
models/release.json (`python -m mltemplate.release.provenance write`); `version` and `name` print the Bento tag's
parts."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from mltemplate import atomic, git
from mltemplate import model as model_files
from mltemplate.errors import CommandError, run
from mltemplate.metadata import Release, head_version
from mltemplate.params import load_params
from mltemplate.paths import DVC_LOCK, RELEASE_FILE


def _run_start(run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    from mltemplate.registry import runs

    start_ms = MlflowClient(tracking_uri=runs.tracking_uri()).get_run(run_id).info.start_time
    return dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def _find_run(experiment: str, model_md5: str) -> str | None:
    from mltemplate.registry import runs

    uri = runs.tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None  # no local store: asking MLflow would create an empty one
    return runs.find_run(experiment, model_md5)


def collect(repo: Path = Path(), *, experiment: str, trained: model_files.TrainedModel) -> Release:
    """The release of `trained` at HEAD of `repo`, with its MLflow run when one logged this model file."""
    found = git.head(repo)
    if found is None:
        raise CommandError(f"{repo.resolve()}: no git commit to version from (commit first)")
    model_md5 = trained.metadata.model_md5
    run_id = _find_run(experiment, model_md5)
    return Release(
        version=head_version(repo),
        git_commit=git.commit(repo),
        model_md5=model_md5,
        data_md5=trained.metadata.data.md5,
        mlflow_run_id=run_id,
        trained_at=_run_start(run_id) if run_id else found[1].isoformat(timespec="seconds"),
        built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def write(path: Path = RELEASE_FILE) -> Release:
    """Check the model against its metadata and dvc.lock, then write its release file."""
    try:
        trained = model_files.load(lock=DVC_LOCK)
    except model_files.ModelError as error:
        raise CommandError(str(error)) from None
    release = collect(Path(), experiment=load_params().name, trained=trained)
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
