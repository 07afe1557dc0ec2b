"""`make card`: the model card (the GitHub Release's notes) from models/release.json, models/metadata.json,
metrics.json and params.yaml, written to build/model-card.md."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mltemplate import atomic
from mltemplate.errors import CommandError
from mltemplate.metadata import ModelMetadata, Release, read_metrics, read_model_metadata, read_release, scalar_metrics
from mltemplate.params import Params, load_params
from mltemplate.paths import RELEASE_FILE

CARD_FILE = Path("build/model-card.md")


def _code(value: Any) -> str:
    return f"`{json.dumps(value) if isinstance(value, dict | list | bool) or value is None else value}`"


def render(rel: Release, metadata: ModelMetadata, metrics: Mapping[str, Any], params: Params) -> str:
    """Markdown: identity, provenance, params, metrics against thresholds, intended use, limitations."""
    features = metadata.input_schema.features
    target, positive = metadata.input_schema.target, metadata.input_schema.positive_class
    classes = metadata.classes
    support = metrics.get("support") if isinstance(metrics.get("support"), dict) else {}
    held_out = sum(int(v) for v in support.values()) if support else None
    thresholds = params.evaluate.thresholds
    lines = [
        f"# {params.name} {rel.version}",
        "",
        f"A binary classifier of `{target}` ({', '.join(f'`{c}`' for c in classes) or 'two classes'}); "
        f"the positive class is `{positive}`. Estimator: `{params.model.estimator}` in a scikit-learn pipeline.",
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
    for name, value in scalar_metrics(metrics).items():
        floor = thresholds.get(name)
        check = "" if floor is None else f"≥ {floor:.4f} {'✅' if value >= floor else '❌'}"
        lines.append(f"| `{name}` | {value:.4f} | {check} |")
    if support:
        lines += ["", "Held-out rows per class: " + ", ".join(f"`{k}` {v}" for k, v in support.items()) + "."]
    lines += [
        "",
        "## Intended use",
        "",
        f"Scoring records with the {len(features)} input columns of `{metadata.data.path}` "
        f"to estimate the probability that `{target}` is `{positive}`, through `POST /predict` of the service. "
        "It supports a person's decision; it is not meant to make one alone.",
        "",
        "## Limitations",
        "",
        f"- Trained on {metadata.data.train_rows} rows and evaluated on "
        f"{held_out if held_out is not None else 'the'} held-out rows of the same data set: the metrics say "
        "nothing about data collected elsewhere, later, or from another population.",
        "- The label is the most probable class (a 0.5 cut-off for two classes); pick a threshold on the "
        "returned probabilities when false negatives and false positives cost differently.",
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
    text = render(rel, read_model_metadata(), read_metrics(), load_params())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out, text)
    print(f"card: wrote {args.out} ({rel.version})")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
