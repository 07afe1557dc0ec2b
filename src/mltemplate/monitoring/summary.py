"""The summary of one `make retrain` for its reviewer (build/retrain/summary.md, the pull request's body, and
summary.json): the rows added per label and labeller, what was left out and why, the cap, the class balance before
and after, how far the new labels agree with the current model, the drift of the new rows, and both models on the
reference set with the verdict. Every name in it comes from the model, params.yaml or a labeller name's pattern."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mltemplate.monitoring.alerts import Check


@dataclass(frozen=True)
class Summary:
    rows_before: int
    rows_after: int
    share: float
    cap: int
    eligible: int
    added: int
    by_source: dict[str, dict[str, int]]
    """labeller -> label -> rows added (regression: the label "value")."""
    dropped: dict[str, int]
    untrusted: dict[str, int]
    unlogged: int
    balance_before: dict[str, int] | None
    balance_after: dict[str, int] | None
    agreement: float | None
    """Share of the new rows whose label the current model predicts (classification), else None."""
    agreement_by_label: dict[str, float]
    current_error: dict[str, float]
    """Regression: the current model's rmse and mae on the new rows."""
    drift: list[Check]
    drift_note: str | None
    reference_rows: int
    carved: bool
    reference_current: dict[str, float]
    reference_retrained: dict[str, float]
    verdict: list[dict[str, Any]] = field(default_factory=list)
    """Each rule of the gate on the reference set: kind, metric, value, limit, passed, reason."""

    @property
    def passed(self) -> bool:
        return all(rule["passed"] for rule in self.verdict)

    @property
    def left(self) -> int:
        return self.eligible - self.added

    def to_json(self) -> str:
        raw = asdict(self)
        raw["drift"] = [check.to_dict() for check in self.drift]
        raw["passed"] = self.passed
        return json.dumps(raw, indent=2, sort_keys=True) + "\n"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items())) or "none"


def markdown(s: Summary, *, title: str) -> str:
    """The reviewer's page (Markdown), verdict first."""
    outcome = "passes" if s.passed else "FAILS"
    lines = [f"## {title}", ""]
    lines += [
        f"**Reference verdict: the retrained model {outcome}** on the {s.reference_rows:,} reference rows (held-out "
        "rows of the original data, never trained on" + (", carved out by this retrain" if s.carved else "") + ").",
        "",
    ]
    for rule in s.verdict:
        if not rule["passed"]:
            lines.append(f"- fails: {rule['reason']}")
    lines += ["", "### Rows added", ""]
    capped = f"; the cap ({s.share:g} of {s.rows_before:,} rows) is {s.cap:,}"
    if s.left:
        capped += f": **{s.left:,} eligible rows were left out** for the next retrain (a seeded sample was added)"
    lines += [f"{s.added:,} production rows added to {s.rows_before:,} ({s.rows_after:,} now){capped}.", ""]
    labels = sorted({label for counts in s.by_source.values() for label in counts})
    rows = [[name, *(f"{counts.get(label, 0):,}" for label in labels)] for name, counts in sorted(s.by_source.items())]
    lines += _table(["labeller", *labels], rows)
    left_out = {**s.dropped, **({"labels of no logged record": s.unlogged} if s.unlogged else {})}
    lines += [
        "",
        f"Left out: {_counts(left_out)}.",
        f"Not trusted (retrain.trusted_labellers): {_counts(s.untrusted)}.",
    ]
    if s.balance_before is not None and s.balance_after is not None:
        classes = sorted(set(s.balance_before) | set(s.balance_after))
        lines += ["", "### Class balance", ""]
        lines += _table(
            ["class", "before", "after"],
            [[c, _share(s.balance_before, c), _share(s.balance_after, c)] for c in classes],
        )
    lines += ["", "### The new labels and the current model", ""]
    if s.agreement is not None:
        per = ", ".join(f"{label} {share:.0%}" for label, share in sorted(s.agreement_by_label.items()))
        lines.append(f"The current model predicts the new label for {s.agreement:.1%} of the new rows ({per}).")
    else:
        lines.append("Current model's error on the new rows: " + _values(s.current_error) + ".")
    lines += ["", "### Drift of the new rows against the current training rows", ""]
    breached = [check for check in s.drift if check.breached]
    lines.append(
        f"{len(breached)} of {len(s.drift)} features drift"
        + (": " if breached else ".")
        + "; ".join(check.describe().removeprefix("drift ") for check in breached)
    )
    if s.drift_note:
        lines.append(f"({s.drift_note})")
    lines += ["", "### Reference set", ""]
    names = sorted(set(s.reference_current) | set(s.reference_retrained))
    lines += _table(
        ["metric", "current", "retrained"],
        [[n, _value(s.reference_current.get(n)), _value(s.reference_retrained.get(n))] for n in names],
    )
    lines += [
        "",
        "The pull request's report compares the two models on the held-out rows neither was trained on, too.",
        "",
    ]
    return "\n".join(lines)


def _share(counts: Mapping[str, int], name: str) -> str:
    total = sum(counts.values()) or 1
    return f"{counts.get(name, 0):,} ({counts.get(name, 0) / total:.1%})"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _values(values: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in sorted(values.items())) or "-"
