"""The serving cost of a PR: both services (the base's from its reproduced checkout, the PR's from the working tree)
up at once under a real `bentoml serve`, then alternating load runs, so that a slower stretch of the runner falls on
both sides; a side that cannot serve leaves its reason."""

from __future__ import annotations

import contextlib
from pathlib import Path

from mltemplate.paths import EXAMPLE_FILE
from mltemplate.report import loadtest, schema
from mltemplate.report.loadtest import LoadStats
from mltemplate.report.schema import LoadRun, Serving, ServingSide


def _load_run(stats: LoadStats) -> LoadRun:
    return LoadRun(
        requests=stats.requests,
        errors=stats.errors,
        duration_s=stats.duration_s,
        rps=stats.rps,
        p50_ms=stats.p50_ms,
        p99_ms=stats.p99_ms,
    )


def measure_serving(
    base_root: Path | None, *, rounds: int, seconds: float, concurrency: int, base_missing: str = ""
) -> Serving:
    """Both services up at once (the base's from `base_root`, a checkout holding its model; None: `base_missing`
    says why there is none), then `rounds` alternating load runs (base, PR, PR, base, ...)."""

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
        for name, repo in (("base", base_root), ("pr", Path.cwd())):
            if repo is None:
                reasons[name] = base_missing or "no model"
                continue
            try:
                url = stack.enter_context(loadtest.served(repo))
                loadtest.measure(f"{url}/predict", body, concurrency=1, requests=5)  # warm-up, not counted
                urls[name] = url
            except loadtest.LoadTestError as error:
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
        base=ServingSide(runs=runs["base"], reason=reasons["base"][: schema.MAX_TEXT]),
        pr=ServingSide(runs=runs["pr"], reason=reasons["pr"][: schema.MAX_TEXT]),
    )
