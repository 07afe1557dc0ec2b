"""`make report`: run the pipeline on this checkout (a PR), compare it with the base branch and write the
`pr-report` artifact into report/: report.json (data only, report/artifact.py), the plot PNGs, and report.md (the
same rendering as the comment, for the job summary). Exits 1, after writing them, when the data step or a stage
failed, when the committed outputs are stale, or when the quality gate (the PR's own thresholds) failed.

The base's params, metrics, plot data, lock and model come through DVC (`dvc.api` at `rev=BASE`), which reads
git-tracked files from that commit and cached outputs from the local cache or the configured remote."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mltemplate import dvcfiles, git, plots
from mltemplate.dotted import flatten
from mltemplate.errors import CommandError
from mltemplate.metrics import scalar_metrics
from mltemplate.params import EvaluateParams
from mltemplate.paths import (
    DATA_DVC,
    DVC_LOCK,
    EXAMPLE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    MODEL_METADATA,
    PARAMS_FILE,
    PLOTS_DIR,
)
from mltemplate.report import artifact, comment
from mltemplate.report.artifact import (
    Confusion,
    CurveName,
    Failure,
    LoadRun,
    Report,
    Serving,
    ServingSide,
    Side,
)
from mltemplate.report.loadtest import LoadStats

REPORT_DIR = Path("report")
TAIL_LINES = 25
CURVE_NAMES: tuple[CurveName, ...] = ("roc", "precision_recall")
"""The curves the comment draws as charts (their axes are mltemplate.plots')."""
COMMITTED_OUTPUTS = (DVC_LOCK, METRICS_FILE, PLOTS_DIR)
"""What a PR commits after `make repro`; `make check-lock` checks the same on main."""

PIPELINE: tuple[tuple[str, ...], ...] = (("python", "-m", "mltemplate.pipeline.data"), ("dvc", "repro"))
"""What `make report` runs before comparing: get the data, then every stage that changed."""


# --- reading both sides -----------------------------------------------------------------------------------


def resolve_base(requested: str | None) -> str:
    """The base ref: `requested` (BASE), else origin/main, else main; it must name a commit."""
    candidates = [requested] if requested else ["origin/main", "main"]
    for ref in candidates:
        if git.is_commit(ref):
            return ref
    raise CommandError(
        f"base ref {candidates[0]!r} is not a commit here"
        + ("" if requested else " (nor is 'main')")
        + ": fetch it (`git fetch origin main`, or `fetch-depth: 0` in CI) or set BASE"
    )


def scalar_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Params as dotted keys with scalar values (a list or an empty mapping becomes its JSON text)."""
    if params is None:
        return None
    return {
        key: item if item is None or isinstance(item, bool | int | float | str) else json.dumps(item)
        for key, item in flatten(params).items()
    }


Rows = list[dict[str, Any]] | None
"""A plot file's rows, as mltemplate.plots reads them (None: no such file)."""


def curve(rows: Rows, name: CurveName) -> list[tuple[float, float]] | None:
    """The (x, y) points of a curve's rows, along the plot's axes (mltemplate.plots)."""
    x, y = plots.BY_NAME[name].x, plots.BY_NAME[name].y
    if rows is None:
        return None
    try:
        return [(float(row[x]), float(row[y])) for row in rows]
    except (KeyError, TypeError, ValueError):
        return None


def confusion(rows: Rows) -> Confusion | None:
    """Counts by actual and predicted class from plots/confusion.json: rows of {actual, predicted, count}, or (as a
    base branch from before counts were stored may have) one row per held-out record, which counts 1."""
    if not rows:
        return None
    try:
        cells = [(str(row["actual"]), str(row["predicted"]), int(row.get("count", 1))) for row in rows]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    labels = sorted({label for actual, predicted, _ in cells for label in (actual, predicted)})
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for actual, predicted, count in cells:
        counts[index[actual]][index[predicted]] += count
    return Confusion(labels=labels, counts=counts)


TOP_FEATURES = 10
"""How many features the report's importance table shows."""


def importance(rows: Rows) -> dict[str, float]:
    """The most important features by permutation importance, from plots/importance.json's rows."""
    found: dict[str, float] = {}
    for row in rows or []:
        if isinstance(row, Mapping) and isinstance(row.get("importance"), int | float):
            found[str(row.get("feature"))] = float(row["importance"])
    return dict(sorted(found.items(), key=lambda item: -item[1])[:TOP_FEATURES])


def side(
    label: str,
    *,
    params: Mapping[str, Any] | None,
    metrics: Mapping[str, Any] | None,
    points: Mapping[str, Rows],
    model_bytes: int | None,
    data_md5: str | None = None,
) -> Side:
    support = metrics.get("support") if metrics else None
    curves = {name: found for name in CURVE_NAMES if (found := curve(points.get(name), name)) is not None}
    return Side(
        label=label,
        params=scalar_params(params),
        metrics=scalar_metrics(metrics) if metrics else None,
        support={str(k): v for k, v in support.items() if isinstance(v, int)} if isinstance(support, dict) else {},
        model_bytes=model_bytes,
        curves=curves,
        confusion=confusion(points.get("confusion")),
        importance=importance(points.get("importance")),
        data_md5=data_md5,
    )


def _dvc_read(path: Path, rev: str, mode: str = "r") -> Any:
    """A file at `rev` through DVC (git-tracked, or a DVC output from the cache or remote); None when absent."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        return dvc.api.read(path.as_posix(), rev=rev, mode=mode)
    except (DvcException, OSError):
        return None


def _json(text: str | None) -> dict[str, Any] | None:
    try:
        found = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def base_side(ref: str, label: str) -> Side:
    """The base's params (`dvc.api.params_show`), metrics (`dvc.api.metrics_show`), plot data and model size
    (its dvc.lock), all at `rev=ref`; what the base does not have reads as None."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        params: dict[str, Any] | None = dvc.api.params_show(PARAMS_FILE.as_posix(), rev=ref)
    except (DvcException, OSError):
        params = None
    try:
        metrics: dict[str, Any] | None = dvc.api.metrics_show(METRICS_FILE.as_posix(), rev=ref) or None
    except (DvcException, OSError):
        metrics = None
    points = {plot.name: plots.parse_points(plot, _dvc_read(plot.data, ref)) for plot in plots.PLOTS}
    out = dvcfiles.parse_lock(_dvc_read(DVC_LOCK, ref)).get(MODEL_FILE.as_posix())
    data_md5 = dvcfiles.tracked_md5(_dvc_read(DATA_DVC, ref))
    return side(
        label, params=params, metrics=metrics, points=points, model_bytes=out.size if out else None, data_md5=data_md5
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    return _json(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_params() -> dict[str, Any] | None:
    """The working tree's params.yaml as a mapping; None when missing or not a YAML mapping."""
    try:
        params = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return params if isinstance(params, dict) else None


def pr_side(label: str, *, failed: bool) -> Side:
    """The working tree after the pipeline ran; after a failure its metrics and plots are stale, so left out."""
    params = read_params()
    data_md5 = dvcfiles.tracked_md5(DATA_DVC.read_text(encoding="utf-8")) if DATA_DVC.is_file() else None
    if failed:
        return side(label, params=params, metrics=None, points={}, model_bytes=None, data_md5=data_md5)
    return side(
        label,
        params=params,
        metrics=_read_json(METRICS_FILE),
        points={plot.name: plots.read_points(plot) for plot in plots.PLOTS},
        model_bytes=MODEL_FILE.stat().st_size if MODEL_FILE.is_file() else None,
        data_md5=data_md5,
    )


def images(base_ref: str, *, pr_failed: bool) -> dict[str, bytes]:
    """The PNGs for the artifact: base_<plot>.png from `base_ref`, pr_<plot>.png from the working tree."""
    found: dict[str, bytes] = {}
    for plot in plots.PLOTS:
        base = _dvc_read(plot.image, base_ref, mode="rb")
        if isinstance(base, bytes):
            found[f"base_{plot.name}.png"] = base
        if not pr_failed and plot.image.is_file():
            found[f"pr_{plot.name}.png"] = plot.image.read_bytes()
    return found


# --- running the PR -------------------------------------------------------------------------------------


def changed_stages() -> list[str]:
    """The stages `dvc status` reports out of date, in the pipeline's order (DVC's own index of dvc.yaml)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            status = repo.status()
            order = [stage.addressing for stage in repo.index.stages]
    except DvcException:
        return []
    return [name for name in order if name in status]


def run_pipeline(commands: Sequence[Sequence[str]] = PIPELINE) -> Failure | None:
    """Run each command, echoing its output; stop at the first that fails and describe it. A failed `dvc repro`
    names the first stage that `dvc status` still reports out of date (the ones before it were reproduced)."""
    for command in commands:
        # This interpreter's python and dvc, whatever PATH says.
        prefix = {"python": [sys.executable], "dvc": [sys.executable, "-m", "dvc"]}.get(command[0], [command[0]])
        args = [*prefix, *command[1:]]
        print(f"report: $ {' '.join(command)}", flush=True)
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        output = (result.stdout + result.stderr).rstrip()
        if output:
            print(output, flush=True)
        if result.returncode != 0:
            tail = "\n".join(output.splitlines()[-TAIL_LINES:])[-artifact.MAX_TAIL :]
            stages = changed_stages() if list(command[:2]) == ["dvc", "repro"] else []
            return Failure(
                command=" ".join(command)[: artifact.MAX_TEXT],
                returncode=result.returncode,
                stage=stages[0] if stages else None,
                tail=tail,
            )
    return None


def stale_outputs(paths: Sequence[Path] = COMMITTED_OUTPUTS) -> list[str]:
    """Committed outputs the pipeline changed (or wrote anew): `git status --porcelain` of `paths`."""
    result = git.git("status", "--porcelain", "--untracked-files=all", "--", *(p.as_posix() for p in paths))
    if result.returncode != 0:
        raise CommandError(f"git status failed: {result.stderr.decode(errors='replace').strip()}")
    return sorted({line[3:].split(" -> ")[-1] for line in result.stdout.decode().splitlines() if line[3:]})


# --- load runs ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def base_tree(ref: str) -> Iterator[Path]:
    """A detached worktree of `ref` with its model files from `dvc.api.open(rev=ref)` (the local cache, else the
    configured DVC remote); removed after. CommandError saying why when DVC cannot get them."""
    import dvc.api
    from dvc.exceptions import DvcException

    with tempfile.TemporaryDirectory(prefix="report-base-") as scratch:
        tree = Path(scratch) / "base"
        added = git.git("worktree", "add", "--detach", str(tree), ref)
        if added.returncode != 0:
            raise CommandError(f"git worktree add failed: {added.stderr.decode(errors='replace').strip()}")
        try:
            for path in (MODEL_FILE, MODEL_METADATA):
                try:
                    with dvc.api.open(path.as_posix(), rev=ref, mode="rb") as source:
                        data = source.read()
                except (DvcException, OSError) as error:
                    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                    raise CommandError(f"DVC could not get its {path} ({reason})") from None
                (tree / path).parent.mkdir(parents=True, exist_ok=True)
                (tree / path).write_bytes(data)
            yield tree
        finally:
            git.git("worktree", "remove", "--force", str(tree))


def _load_run(stats: LoadStats) -> LoadRun:
    return LoadRun(
        requests=stats.requests,
        errors=stats.errors,
        duration_s=stats.duration_s,
        rps=stats.rps,
        p50_ms=stats.p50_ms,
        p99_ms=stats.p99_ms,
    )


def measure_serving(base_ref: str, *, rounds: int, seconds: float, concurrency: int) -> Serving:
    """Both services up at once, then `rounds` alternating load runs (base, PR, PR, base, ...), so that a
    slower or busier stretch of the runner falls on both sides; one side that cannot serve leaves its reason."""
    from mltemplate.report import loadtest

    def empty(reason: str) -> Serving:
        return Serving(
            concurrency=concurrency,
            seconds=seconds,
            base=ServingSide(reason=reason),
            pr=ServingSide(reason=reason),
        )

    if not EXAMPLE_FILE.is_file():
        return empty(f"{EXAMPLE_FILE} not found")
    body = EXAMPLE_FILE.read_bytes()
    urls: dict[str, str] = {}
    reasons = {"base": "", "pr": ""}
    runs: dict[str, list[LoadRun]] = {"base": [], "pr": []}
    with contextlib.ExitStack() as stack:
        for name in ("base", "pr"):
            try:
                repo = stack.enter_context(base_tree(base_ref)) if name == "base" else Path.cwd()
                url = stack.enter_context(loadtest.served(repo))
                loadtest.measure(f"{url}/predict", body, concurrency=1, requests=5)  # warm-up, not counted
                urls[name] = url
            except (CommandError, loadtest.LoadTestError) as error:
                reasons[name] = str(error).splitlines()[0]
        for round_ in range(rounds):
            # ABBA: base first in even rounds, PR first in odd ones, so neither side always follows the other.
            for name in ("base", "pr") if round_ % 2 == 0 else ("pr", "base"):
                if name in urls:
                    stats = loadtest.measure(f"{urls[name]}/predict", body, concurrency=concurrency, duration=seconds)
                    runs[name].append(_load_run(stats))
    return Serving(
        concurrency=concurrency,
        seconds=seconds,
        base=ServingSide(runs=runs["base"], reason=reasons["base"][: artifact.MAX_TEXT]),
        pr=ServingSide(runs=runs["pr"], reason=reasons["pr"][: artifact.MAX_TEXT]),
    )


# --- the command ----------------------------------------------------------------------------------------


def policy(params: Mapping[str, Any] | None) -> tuple[EvaluateParams, str | None]:
    """The gate's policy from the PR's params.yaml, and the error when it does not validate (then the default
    policy, no thresholds: the report is still written and the error fails the gate)."""
    from mltemplate.params import ParamsError, parse_params

    try:
        return parse_params(params, source=PARAMS_FILE).evaluate, None
    except ParamsError as error:
        return EvaluateParams(), str(error)[: artifact.MAX_TAIL]


def write(out: Path, report: Report, markdown: str, pngs: Mapping[str, bytes]) -> None:
    """The artifact: report.json, report.md and the PNGs, in `out` emptied of any earlier artifact file."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.name in artifact.ALLOWED_FILES or old.name == "pr-number":
            old.unlink()
    for name, png in pngs.items():
        (out / name).write_bytes(png)
    (out / artifact.DATA_FILE).write_text(report.to_json(), encoding="utf-8")
    (out / artifact.REPORT_FILE).write_text(markdown, encoding="utf-8")


def _pr_number(env: Mapping[str, str]) -> int | None:
    number = env.get("PR_NUMBER", "").strip()
    if not number:
        return None
    if not re.fullmatch(r"[1-9][0-9]{0,9}", number):
        raise CommandError(f"PR_NUMBER must be a positive integer, got {number!r}")
    return int(number)


def _head_sha(env: Mapping[str, str]) -> str | None:
    sha = env.get("HEAD_SHA", "").strip()
    if sha and not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise CommandError(f"HEAD_SHA must be a full commit sha (40 hex digits), got {sha!r}")
    return sha or None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.report.pr", description=__doc__)
    parser.add_argument("--base", default=os.environ.get("BASE") or None, help="base ref (env BASE; origin/main)")
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help="output directory (default: report)")
    parser.add_argument("--load-seconds", type=float, default=5.0, help="length of each load run (default: 5)")
    parser.add_argument("--rounds", type=int, default=4, help="load runs per side, alternating (default: 4)")
    parser.add_argument("--concurrency", type=int, default=4, help="clients in the load run (default: 4)")
    parser.add_argument("--no-load", action="store_true", help="skip the load runs (faster; no latency)")
    parser.add_argument("--no-repro", action="store_true", help="compare the outputs as they are, run nothing")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= artifact.MAX_RUNS:
        raise CommandError(f"--rounds must be in 1..{artifact.MAX_RUNS}, got {args.rounds}")

    pr_number, head_sha = _pr_number(os.environ), _head_sha(os.environ)
    base_ref = resolve_base(args.base)
    base_label = base_ref.removeprefix("origin/")

    failure = None if args.no_repro else run_pipeline()
    stale = [] if failure is not None or args.no_repro else stale_outputs()
    base, pr = base_side(base_ref, base_label), pr_side("PR", failed=failure is not None)
    pr_policy, params_error = policy(read_params())
    serving = None
    if failure is None and pr.metrics is not None and not args.no_load:
        serving = measure_serving(base_ref, rounds=args.rounds, seconds=args.load_seconds, concurrency=args.concurrency)
    report = Report(
        pr_number=pr_number,
        head_sha=head_sha,
        base_ref=base_label[: artifact.MAX_TEXT],
        base=base,
        pr=pr,
        thresholds=dict(pr_policy.thresholds),
        tolerance=pr_policy.tolerance,
        params_error=params_error,
        failure=failure,
        stale=stale,
        serving=serving,
    )
    verdict = comment.judge_report(
        report,
        policy=pr_policy,
        base_metrics=base.metrics,
        base_data_md5=base.data_md5,
        source="the PR's own params.yaml (the comment re-checks against the base's)",
    )
    try:
        markdown = comment.render(report, verdict)
    except artifact.ArtifactError as error:  # too long for a comment: report.json still carries everything
        markdown = f"{comment.MARKER}\n## Model report\n\nNot rendered: {error}.\n"
    write(args.out, report, markdown, images(base_ref, pr_failed=failure is not None))
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(markdown)
    print(f"report: wrote {args.out / artifact.DATA_FILE} and {artifact.REPORT_FILE} (vs {base_ref})")
    if failure is not None:
        where = f" at stage {failure.stage}" if failure.stage else ""
        raise CommandError(f"`{failure.command}` failed{where}; see {args.out / artifact.REPORT_FILE}")
    if stale:
        raise CommandError(
            "the committed outputs are not what the pipeline reproduces: "
            + ", ".join(stale)
            + "; run `make repro` and commit them"
        )
    if not verdict.passed:
        raise CommandError("quality gate failed: " + "; ".join(verdict.failures).replace("`", ""))


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
