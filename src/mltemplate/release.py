"""The release version and provenance of the served model: reads git, dvc.lock, models/ and MLflow, writes
models/release.json (`python -m mltemplate.release write`; `... version` and `... name` print the Bento tag's parts)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from mltemplate import atomic
from mltemplate import model as model_files
from mltemplate.cli import CommandError, run
from mltemplate.paths import DVC_LOCK, MODEL_FILE, MODEL_METADATA, PARAMS_FILE

RELEASE_FILE = Path("models/release.json")
"""Written by `make bento` and shipped in the Bento; git-ignored, not a DVC output."""

TRAIN_STAGE = "train"


@dataclass(frozen=True)
class Release:
    """Which model a build serves, where it came from, and when it was trained and built."""

    version: str
    git_commit: str
    model_md5: str
    data_md5: str
    mlflow_run_id: str | None
    trained_at: str
    built_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _head(repo: Path) -> tuple[str, dt.datetime]:
    """HEAD's sha and commit time (UTC); CommandError outside a git work tree or before the first commit."""
    result = subprocess.run(
        ["git", "log", "-1", "--format=%H %ct"], cwd=repo, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise CommandError(f"{repo.resolve()}: no git commit to version from ({result.stderr.strip() or 'no HEAD'})")
    sha, seconds = result.stdout.split()
    return sha, dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def version(repo: Path = Path()) -> str:
    """`YYYY.MM.DD-HHMMSS-sha7` of HEAD's commit time (UTC): unique, sortable, a valid Docker and git tag."""
    sha, when = _head(repo)
    return f"{when:%Y.%m.%d}-{when:%H%M%S}-{sha[:7]}"


def locked_model_md5(lock: Path = DVC_LOCK, model_path: Path = MODEL_FILE) -> str:
    """The md5 dvc.lock records for the model file as an output of the train stage (paths relative to the lock)."""
    if not lock.exists():
        raise model_files.ModelError(f"no {lock}: run `make run` first to train and record the model")
    stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
    for out in stages.get(TRAIN_STAGE, {}).get("outs", []):
        if (lock.parent / out.get("path", "")).resolve() == model_path.resolve() and "md5" in out:
            return str(out["md5"])
    raise model_files.ModelError(f"{lock} records no md5 for {model_path} in stage {TRAIN_STAGE!r}: run `make run`")


def check_files(*, model_path: Path = MODEL_FILE, metadata_path: Path = MODEL_METADATA, lock: Path = DVC_LOCK) -> str:
    """Prove, without loading it, that the model file is the one the pipeline produced: its md5 must equal both
    the md5 in its metadata and the one dvc.lock records. Returns that md5; ModelError says what to do."""
    actual = model_files.check(model_path=model_path, metadata_path=metadata_path)
    locked = locked_model_md5(lock, model_path)
    if actual != locked:
        raise model_files.ModelError(
            f"{model_path} (md5 {actual}) is not the model {lock} records (md5 {locked}): "
            "run `make run` to rebuild it, or restore the file the pipeline produced"
        )
    return actual


def check_model(
    *, model_path: Path = MODEL_FILE, metadata_path: Path = MODEL_METADATA, lock: Path = DVC_LOCK
) -> model_files.TrainedModel:
    """check_files, then load the model (which refuses untrusted types): nothing is deserialised before both
    hashes agree."""
    check_files(model_path=model_path, metadata_path=metadata_path, lock=lock)
    return model_files.load(model_path=model_path, metadata_path=metadata_path)


def _run_start(run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    from mltemplate import tracking

    start_ms = MlflowClient(tracking_uri=tracking.tracking_uri()).get_run(run_id).info.start_time
    return dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def _find_run(experiment: str, model_md5: str) -> str | None:
    from mltemplate import tracking

    uri = tracking.tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None  # no local store: asking MLflow would create an empty one
    return tracking.find_run(experiment, model_md5)


def collect(repo: Path = Path(), *, experiment: str, trained: model_files.TrainedModel) -> Release:
    """The release of `trained` at HEAD of `repo`, with its MLflow run when one logged this model file."""
    from mltemplate import tracking

    _, committed = _head(repo)
    model_md5 = str(trained.metadata["model_md5"])
    run_id = _find_run(experiment, model_md5)
    return Release(
        version=version(repo),
        git_commit=tracking.git_commit(repo),
        model_md5=model_md5,
        data_md5=str(trained.metadata["data"]["md5"]),
        mlflow_run_id=run_id,
        trained_at=_run_start(run_id) if run_id else committed.isoformat(timespec="seconds"),
        built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def read(path: Path = RELEASE_FILE) -> Release | None:
    """The release written by `make bento`, or None when there is none."""
    if not path.exists():
        return None
    return Release(**json.loads(path.read_text(encoding="utf-8")))


def current(trained: model_files.TrainedModel, *, experiment: str, path: Path = RELEASE_FILE) -> Release:
    """models/release.json when it describes this model file at this commit (in a Bento, where there is no git,
    the file alone decides), else the same fields computed now."""
    written = read(path)
    if written is not None and written.model_md5 == trained.metadata["model_md5"]:
        try:
            head = version(Path())
        except CommandError:
            return written
        if written.version == head:
            return written
    return collect(Path(), experiment=experiment, trained=trained)


def write(path: Path = RELEASE_FILE) -> Release:
    """Check the model against dvc.lock and write its release file."""
    from mltemplate.params import load_params

    try:
        trained = check_model()
    except model_files.ModelError as error:
        raise CommandError(str(error)) from None
    release = collect(Path(), experiment=load_params(PARAMS_FILE).name, trained=trained)
    atomic.write_text(path, json.dumps(release.to_dict(), indent=2, sort_keys=True) + "\n")
    return release


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.release", description=__doc__)
    parser.add_argument("command", choices=["write", "version", "name"])
    args = parser.parse_args(argv)
    if args.command == "version":
        print(version())
        return
    if args.command == "name":
        from mltemplate.params import load_params

        print(load_params(PARAMS_FILE).name)
        return
    release = write()
    print(f"{RELEASE_FILE}: {release.version} (model md5 {release.model_md5}, run {release.mlflow_run_id})")


if __name__ == "__main__":
    sys.exit(run(main))
