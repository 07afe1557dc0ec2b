"""The two sides of a PR report as data: each branch's params, metrics, plot points (curves, confusion counts,
permutation importance) and model size. The base's are read through DVC at its commit (`dvc.api`: git-tracked files
from that commit, cached outputs from the local cache or the configured remote), the PR's from the working tree."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mltemplate import dvcfiles, plots
from mltemplate.dotted import flatten
from mltemplate.metrics import SUPPORT, MetricsError, parse_metrics, read_metrics, scalar_metrics
from mltemplate.params import read_yaml
from mltemplate.paths import DATA_DVC, DVC_LOCK, METRICS_FILE, MODEL_FILE, PARAMS_FILE
from mltemplate.report.schema import MAX_TEXT, Confusion, CurveName, Side

CURVE_NAMES: tuple[CurveName, ...] = ("roc", "precision_recall")
"""The curves the comment draws as charts (their axes are mltemplate.plots')."""


def _fitted(text: str) -> str:
    """`text` within the artifact's length cap: a long one keeps its start and a digest of the whole, so two values
    that differ only past the cap still differ."""
    if len(text) <= MAX_TEXT:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{text[: MAX_TEXT - 40]}… ({len(text)} characters, sha256 {digest})"


def scalar_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Params as dotted keys with scalar values (a list or an empty mapping becomes its JSON text; text longer than
    the artifact allows keeps its start and a digest)."""
    if params is None:
        return None
    return {
        key: item
        if item is None or isinstance(item, bool | int | float)
        else _fitted(str(item) if isinstance(item, str) else json.dumps(item))
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
    support = metrics.get(SUPPORT) if metrics else None
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


def base_side(ref: str, label: str) -> Side:
    """The base's params, metrics, plot points and model size (its dvc.lock), all at `rev=ref` through DVC; what the
    base does not have reads as None."""
    found = _dvc_read(METRICS_FILE, ref)
    try:
        metrics = parse_metrics(found) if found is not None else None
    except MetricsError:
        metrics = None
    points = {plot.name: plots.parse_points(plot, _dvc_read(plot.data, ref)) for plot in plots.PLOTS}
    out = dvcfiles.parse_lock(_dvc_read(DVC_LOCK, ref)).get(MODEL_FILE.as_posix())
    return side(
        label,
        params=base_params(ref),
        metrics=metrics,
        points=points,
        model_bytes=out.size if out else None,
        data_md5=dvcfiles.tracked_md5(_dvc_read(DATA_DVC, ref)),
    )


def base_params(ref: str) -> dict[str, Any] | None:
    """The base's params.yaml as a mapping, read as data at `rev=ref`; None when it has none that parses."""
    return _params(_dvc_read(PARAMS_FILE, ref))


def _params(text: str | None) -> dict[str, Any] | None:
    """A params.yaml's text as a mapping; None when absent or not a YAML mapping (it is shown, then refused)."""
    try:
        found = read_yaml(text) if text is not None else None
    except yaml.YAMLError:
        return None
    return found if isinstance(found, dict) else None


def read_params() -> dict[str, Any] | None:
    """The working tree's params.yaml as a mapping; None when missing or not a YAML mapping."""
    return _params(PARAMS_FILE.read_text(encoding="utf-8")) if PARAMS_FILE.is_file() else None


def pr_side(label: str, *, failed: bool) -> Side:
    """The working tree after the pipeline ran; after a failure its metrics and plots are stale, so left out."""
    params = read_params()
    data_md5 = dvcfiles.tracked_md5(DATA_DVC.read_text(encoding="utf-8")) if DATA_DVC.is_file() else None
    if failed:
        return side(label, params=params, metrics=None, points={}, model_bytes=None, data_md5=data_md5)
    return side(
        label,
        params=params,
        metrics=read_metrics() if METRICS_FILE.is_file() else None,
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
