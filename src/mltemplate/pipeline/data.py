"""`make data`: get the raw CSV that data.dvc tracks, from the local DVC cache when it holds it, else from the DVC
remote when one is configured and reachable, else from the data set bundled with scikit-learn; either way checked
against data.dvc's md5.
`python -m mltemplate.pipeline.data track PATH` points data.dvc at your own CSV and writes its data contract;
`... contract` accepts the tracked CSV's current columns as the contract."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mltemplate import atomic
from mltemplate.dvcfiles import DVC, md5, read_tracked, to_csv_text, track
from mltemplate.errors import CommandError
from mltemplate.paths import CONTRACT_FILE, DATA_DVC


def breast_cancer() -> pd.DataFrame:
    """scikit-learn's copy of the Wisconsin diagnostic breast-cancer data (569 rows, 30 features)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame: pd.DataFrame = bunch.data.rename(columns=lambda name: name.replace(" ", "_"))
    frame["diagnosis"] = [str(bunch.target_names[t]) for t in bunch.target]
    return frame


BUNDLED: dict[str, Callable[[], pd.DataFrame]] = {"breast_cancer.csv": breast_cancer}
"""Data sets that can be rebuilt offline, by file name."""


def remotes() -> list[str]:
    result = subprocess.run([*DVC, "remote", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def checkout(dvc_file: Path = DATA_DVC) -> bool:
    """`dvc checkout` the tracked file from the local DVC cache (a clone that shares this checkout's cache, or data
    tracked here before); False, quietly, when the cache does not hold it."""
    result = subprocess.run([*DVC, "checkout", "--quiet", str(dvc_file)], capture_output=True, text=True, check=False)
    return result.returncode == 0


def pull(dvc_file: Path = DATA_DVC) -> bool:
    """`dvc pull` the tracked file; False (with the reason printed) when the remote cannot be reached."""
    result = subprocess.run([*DVC, "pull", str(dvc_file)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        print(f"data: dvc pull failed: {reason[-1] if reason else 'no output'}", file=sys.stderr)
    return result.returncode == 0


def materialize(path: Path, expected_md5: str) -> None:
    """Write the bundled data set to `path` if its bytes hash to `expected_md5`; else raise, writing nothing."""
    build = BUNDLED.get(path.name)
    if build is None:
        raise CommandError(
            f"{path} is missing, no DVC remote could provide it and it is not a bundled data set "
            f"({sorted(BUNDLED)}): configure a remote (`dvc remote add -d ...`) or copy the file there"
        )
    text = to_csv_text(build())
    actual = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
    if actual != expected_md5:
        raise CommandError(
            f"bundled {path.name} hashes to {actual} but {DATA_DVC} expects {expected_md5}: "
            "the scikit-learn copy differs from the tracked one; refusing to use it"
        )
    atomic.write_text(path, text)


def fetch(dvc_file: Path = DATA_DVC) -> str:
    """Make the tracked file present and verified; returns how it got there."""
    tracked = read_tracked(dvc_file)
    path, expected = tracked.path, tracked.md5
    if path.exists() and md5(path) == expected:
        return "already present"
    if checkout(dvc_file) and path.exists() and md5(path) == expected:
        return "checked out from the DVC cache"
    if remotes() and pull(dvc_file) and path.exists() and md5(path) == expected:
        return "pulled from the DVC remote"
    if path.exists():
        print(f"data: {path} does not match {dvc_file}; replacing it", file=sys.stderr)
    materialize(path, expected)
    return "written from the bundled copy"


def accept_contract(csv: Path, path: Path = CONTRACT_FILE) -> list[str]:
    """Write the contract `csv` satisfies; returns what changed against the previous one (everything when new)."""
    from mltemplate import contract
    from mltemplate.pipeline.prepare import read_raw

    new = contract.infer(read_raw(csv))
    old = contract.read(path) if path.exists() else contract.Contract()
    contract.write(new, source=csv, path=path)
    return contract.differences(old, new)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.pipeline.data", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("fetch", help="get the tracked CSV (default)")
    track_cmd = sub.add_parser("track", help="point data.dvc at your own CSV and write its data contract")
    track_cmd.add_argument("csv", type=Path)
    sub.add_parser("contract", help=f"accept the tracked CSV's columns as the data contract ({CONTRACT_FILE})")
    args = parser.parse_args(argv)
    if args.command == "track":
        track(args.csv)
        print(f"data: {DATA_DVC} now tracks {args.csv}; set data.raw in params.yaml to the same path")
    if args.command in ("track", "contract"):
        csv = args.csv if args.command == "track" else read_tracked().path
        existed = CONTRACT_FILE.exists()
        changes = accept_contract(csv)
        if not existed:
            print(f"data: wrote {CONTRACT_FILE} for {csv}")
        else:
            print(f"data: {CONTRACT_FILE} " + ("unchanged" if not changes else "updated: " + "; ".join(changes)))
        return
    tracked = read_tracked()
    how = fetch()
    print(f"data: {tracked.path} (md5 {tracked.md5}) {how}")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
