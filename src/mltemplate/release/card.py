"""`make card`: the model card (the GitHub Release's notes) from models/release.json, models/metadata.json,
metrics.json and params.yaml, written to build/model-card.md."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mltemplate import atomic, gate, metrics, plots
from mltemplate.errors import CommandError
from mltemplate.identity import Release, read_release
from mltemplate.model_metadata import ModelMetadata, read_model_metadata
from mltemplate.params import Params, load_params
from mltemplate.paths import RELEASE_FILE
from mltemplate.release import comparison

CARD_FILE = Path("build/model-card.md")


def _code(value: Any) -> str:
    return f"`{json.dumps(value) if isinstance(value, dict | list | bool) or value is None else value}`"


def _summary(metadata: ModelMetadata, estimator: str) -> str:
    schema = metadata.input_schema
    classes = ", ".join(f"`{c}`" for c in metadata.classes)
    if schema.task == "regression":
        return f"A regression model of `{schema.target}`. Estimator: `{estimator}` in a scikit-learn pipeline."
    if schema.task == "multiclass":
        return (
            f"A multiclass classifier of `{schema.target}` ({classes}). "
            f"Estimator: `{estimator}` in a scikit-learn pipeline."
        )
    return (
        f"A binary classifier of `{schema.target}` ({classes or 'two classes'}); "
        f"the positive class is `{schema.positive_class}`. Estimator: `{estimator}` in a scikit-learn pipeline."
    )


def _use(metadata: ModelMetadata) -> tuple[str, str]:
    """What the model estimates, and how its answer should be read (for Intended use and Limitations)."""
    schema = metadata.input_schema
    if schema.task == "regression":
        return (
            f"to predict the value of `{schema.target}`",
            "- The answer is a point estimate with no interval; the held-out rmse and mae say how far off it "
            "typically is.",
        )
    if schema.task == "multiclass":
        return (
            f"to estimate the probability of each class of `{schema.target}`",
            "- The label is the most probable class; read the returned probabilities when mistakes between "
            "some classes cost more than others.",
        )
    return (
        f"to estimate the probability that `{schema.target}` is `{schema.positive_class}`",
        "- The label is the most probable class (a 0.5 cut-off for two classes); pick a threshold on the "
        "returned probabilities when false negatives and false positives cost differently.",
    )


def _importance_lines(rows: list[dict[str, Any]], top: int = 10) -> list[str]:
    if not rows:
        return []
    return [
        "",
        "## What drives it (permutation importance, held-out split)",
        "",
        "How much the score drops when one input column is shuffled (mean ± std over seeded shuffles); "
        "near zero means the model barely uses the column.",
        "",
        "| Feature | Importance | ± |",
        "|---|---:|---:|",
        *[f"| `{r['feature']}` | {float(r['importance']):.4f} | {float(r['std']):.4f} |" for r in rows[:top]],
    ]


def _slice_lines(held_out: Mapping[str, Any], params: Params, verdict: gate.Verdict) -> list[str]:
    slices = held_out.get(metrics.SLICES)
    if not isinstance(slices, Mapping) or not slices:
        return []
    gaps = held_out.get(metrics.SLICE_GAP) if isinstance(held_out.get(metrics.SLICE_GAP), Mapping) else {}
    judged = {c.metric: c for c in verdict.of("slice_gap")}
    lines = ["", "## Per-group metrics (held-out split)", ""]
    for column, groups in slices.items():
        names = [n for n in metrics.names(params.data.task) if any(n in g for g in groups.values())]
        lines += [f"`{column}`:", "", "| Group | " + " | ".join(f"`{n}`" for n in names) + " |"]
        lines.append("|---|" + "---:|" * len(names))
        for value, found in groups.items():
            lines.append(f"| `{value}` | " + " | ".join(_num(found.get(n)) for n in names) + " |")
        gap = gaps.get(column, {}) if isinstance(gaps, Mapping) else {}
        cells = []
        for n in names:
            rule = judged.get(f"{metrics.SLICE_GAP}.{column}.{n}")
            mark = "" if rule is None or n not in gap else (" ✅" if rule.passed else " ❌")
            cells.append(_num(gap.get(n)) + mark)
        lines += ["| **largest gap** | " + " | ".join(cells) + " |", ""]
    return lines[:-1]


def _num(value: Any) -> str:
    return "—" if value is None else f"{float(value):.4f}"


def _production_lines(found: comparison.AgainstProduction | None) -> list[str]:
    if found is None:
        return []
    lines = ["", "## Compared with the model in production", ""]
    c = found.comparison
    if found.version is None:
        return [*lines, "No release was in production: this is the first."]
    if not c.available:
        return [*lines, f"Not compared with production `{found.version}`: {c.reason}."]
    lines += [
        f"Against release `{found.version}` (its model {found.how}), on the {c.rows} held-out rows neither model "
        f"was trained on; the interval holds this release minus production with {c.confidence:.0%} confidence "
        f"(a paired bootstrap, {c.resamples} seeded resamples).",
        "",
        "| Metric | Production | This release | Difference | 95% interval | Verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    for d in c.differences:
        interval = f"[{d.low:+.4f}, {d.high:+.4f}]" if d.measurable else "—"
        lines.append(f"| `{d.metric}` | {d.base:.4f} | {d.candidate:.4f} | {d.delta:+.4f} | {interval} | {d.verdict} |")
    return lines + [f"- {note}" for note in c.notes]


def render(
    rel: Release,
    metadata: ModelMetadata,
    held_out: Mapping[str, Any],
    params: Params,
    importance: list[dict[str, Any]] | None = None,
    production: comparison.AgainstProduction | None = None,
) -> str:
    """Markdown: identity, provenance, params, metrics against thresholds, what drives the model, per-group
    metrics, intended use, limitations."""
    features = metadata.input_schema.features
    support = held_out.get(metrics.SUPPORT) if isinstance(held_out.get(metrics.SUPPORT), dict) else {}
    held_out_rows = sum(int(v) for v in support.values()) if support else None
    verdict = gate.judge(held_out, params.evaluate)
    thresholds = {c.metric: c for c in verdict.of("threshold")}
    lines = [
        f"# {params.name} {rel.version}",
        "",
        _summary(metadata, params.model.estimator),
        "",
        "## Provenance",
        "",
        "| | |",
        "|---|---|",
        f"| Version | `{rel.version}` |",
        f"| Git commit | `{rel.git_commit}` |",
        f"| Data | `{metadata.data.path}` (md5 `{rel.data_md5}`) |",
        f"| Model file md5 | `{rel.model_md5}` |",
        f"| MLflow run | `{rel.mlflow_run_id or 'none (no tracking server)'}` |",
        f"| Registered model version | `{rel.registry_version or 'none (no tracking server)'}` |",
        f"| Model key (model, data and params) | `{rel.model_key or 'unknown'}` |",
        f"| Trained | {rel.trained_at} |",
        f"| Built | {rel.built_at} |",
        "",
        "## Params",
        "",
        "| Param | Value |",
        "|---|---|",
        f"| `model.estimator` | `{params.model.estimator}` |",
        *[f"| `model.hyperparameters.{k}` | {_code(v)} |" for k, v in params.model.selected.items()],
        f"| `seed` | `{params.seed}` |",
        f"| `split.test_size` | `{params.split.test_size}` |",
        "",
        "## Metrics (held-out split)",
        "",
        "| Metric | Value | Threshold |",
        "|---|---:|---|",
    ]
    for name, value in metrics.scalar_metrics(held_out).items():
        if name.startswith((f"{metrics.SLICES}.", f"{metrics.SLICE_GAP}.")):
            continue  # in their own section below
        rule = thresholds.get(name)
        mark = "" if rule is None else f"{rule.bound} {rule.limit:.4f} {'✅' if rule.passed else '❌'}"
        lines.append(f"| `{name}` | {value:.4f} | {mark} |")
    if support:
        lines += ["", "Held-out rows per class: " + ", ".join(f"`{k}` {v}" for k, v in support.items()) + "."]
    lines += _production_lines(production)
    lines += _importance_lines(importance or [])
    lines += _slice_lines(held_out, params, verdict)
    estimate, reading = _use(metadata)
    lines += [
        "",
        "## Intended use",
        "",
        f"Scoring records with the {len(features)} input columns of `{metadata.data.path}` "
        f"{estimate}, through `POST /predict` of the service. "
        "It supports a person's decision; it is not meant to make one alone.",
        "",
        "## Limitations",
        "",
        f"- Trained on {metadata.data.train_rows} rows and evaluated on "
        f"{held_out_rows if held_out_rows is not None else 'the'} held-out rows of the same data set: the metrics say "
        "nothing about data collected elsewhere, later, or from another population.",
        reading,
        "- Records with columns or categories unseen in training are scored, not refused; check inputs upstream.",
        "- Retrain and re-evaluate (a PR that changes `params.yaml` or the data) before relying on it for a new use.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.release.card", description=__doc__)
    parser.add_argument("--out", type=Path, default=CARD_FILE, help=f"output file (default: {CARD_FILE})")
    args = parser.parse_args(argv)
    rel = read_release()
    if rel is None:
        raise CommandError(f"{RELEASE_FILE} not found: run `make bento` first")
    importance = plots.read_points(plots.BY_NAME["importance"]) or []
    production = comparison.read() if comparison.COMPARISON_FILE.is_file() else None
    text = render(rel, read_model_metadata(), metrics.read_metrics(), load_params(), importance, production)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out, text)
    print(f"card: wrote {args.out} ({rel.version})")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
