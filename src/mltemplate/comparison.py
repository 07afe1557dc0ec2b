"""Two models on the same rows: the difference of each metric between them with a seeded 95% confidence interval
from a paired bootstrap (scipy.stats.bootstrap), overall and per group of each slice column, and the comparison as
data. Which rows they are is mltemplate.same_rows'; the gate (mltemplate.gate) turns the intervals into a verdict."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from mltemplate.errors import Error
from mltemplate.metrics import DIGITS, Task, counts, metric, resampled_scorer

CONFIDENCE = 0.95
RESAMPLES = 1000
"""Bootstrap resamples: the interval's ends move by about 1e-3 of a metric's range between seeds at this count."""
MIN_ROWS = 20
"""Fewer shared rows than this (overall, or in a group) say too little to compare: marked, not judged."""
MAX_ROWS = 20_000
"""More shared rows than this are compared on a seeded sample of this many: the intervals are then those of
MAX_ROWS rows, wider than all of them would give, never narrower, and a comparison stays within seconds."""
BATCH = 50
"""Resamples weighed at once: bounds the memory of the weights matrix (BATCH x rows floats)."""

Verdict = Literal["better", "worse", "no measurable difference", "too few rows"]


class ComparisonError(Error, ValueError):
    """The base model cannot score the candidate's held-out rows (a column is missing or retyped, a class unknown)."""


@dataclass(frozen=True)
class Difference:
    """One metric of both models on the same rows: each one's value, and the candidate-minus-base difference
    with its confidence interval (NaN ends: the metric was undefined in some resamples)."""

    metric: str
    base: float
    candidate: float
    low: float
    high: float

    @property
    def delta(self) -> float:
        return self.candidate - self.base

    @property
    def sign(self) -> int:
        found = metric(self.metric)
        return 1 if found is None or found.higher_is_better else -1

    @property
    def measurable(self) -> bool:
        return bool(np.isfinite(self.low) and np.isfinite(self.high))

    @property
    def improvement(self) -> tuple[float, float]:
        """The interval of the difference in the metric's good direction: (least, most) improvement."""
        return (self.low, self.high) if self.sign > 0 else (-self.high, -self.low)

    @property
    def verdict(self) -> Verdict:
        """better or worse when the whole interval lies on one side of zero; else no measurable difference."""
        if not self.measurable:
            return "too few rows"
        least, most = self.improvement
        if least > 0:
            return "better"
        if most < 0:
            return "worse"
        return "no measurable difference"


@dataclass(frozen=True)
class Group:
    """The differences on the shared rows of one group (value) of one slice column."""

    column: str
    value: str
    rows: int
    differences: tuple[Difference, ...] = ()

    @property
    def judged(self) -> bool:
        return self.rows >= MIN_ROWS


@dataclass(frozen=True)
class Comparison:
    """The candidate against the base on `rows` shared held-out rows; `reason` says why there is no comparison."""

    rows: int = 0
    differences: tuple[Difference, ...] = ()
    groups: tuple[Group, ...] = ()
    reason: str | None = None
    confidence: float = CONFIDENCE
    resamples: int = RESAMPLES
    seed: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def available(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict[str, Any]:
        """As JSON data; an undefined interval end is null."""
        raw = asdict(self)
        for d in [*raw["differences"], *(d for g in raw["groups"] for d in g["differences"])]:
            d.update({end: None if not math.isfinite(d[end]) else d[end] for end in ("low", "high")})
        return raw

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Comparison:
        def difference(d: Mapping[str, Any]) -> Difference:
            ends = [math.nan if d[end] is None else float(d[end]) for end in ("low", "high")]
            return Difference(str(d["metric"]), float(d["base"]), float(d["candidate"]), *ends)

        return cls(
            rows=int(raw["rows"]),
            differences=tuple(difference(d) for d in raw["differences"]),
            groups=tuple(
                Group(str(g["column"]), str(g["value"]), int(g["rows"]), tuple(difference(d) for d in g["differences"]))
                for g in raw["groups"]
            ),
            reason=raw.get("reason"),
            confidence=float(raw.get("confidence", CONFIDENCE)),
            resamples=int(raw.get("resamples", RESAMPLES)),
            seed=int(raw.get("seed", 0)),
            notes=tuple(raw.get("notes", ())),
        )


def unavailable(reason: str) -> Comparison:
    return Comparison(reason=reason)


# --- how they differ ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """One model's answers for the shared rows: class probabilities in `classes` order, or predicted values."""

    output: np.ndarray
    classes: tuple[str, ...]


def _check_classes(actual: np.ndarray, scored: Scored, who: str) -> None:
    unknown = sorted(set(map(str, actual)) - set(scored.classes))
    if unknown:
        raise ComparisonError(f"the {who} model does not know class {unknown[0]!r} of the held-out rows")


def differences(
    task: Task,
    actual: np.ndarray,
    base: Scored,
    candidate: Scored,
    positive: str | None,
    *,
    seed: int,
    resamples: int = RESAMPLES,
) -> tuple[Difference, ...]:
    """Each task metric of both models on these rows, and the paired bootstrap interval of candidate minus base:
    every resample draws the same rows for both models (scipy's `paired=True`), so what the interval measures is
    the models' difference, not the rows' luck."""
    n = len(actual)
    if task != "regression":
        _check_classes(actual, base, "base")
        _check_classes(actual, candidate, "candidate")

    score_base = resampled_scorer(task, actual, base.output, base.classes, positive)
    score_candidate = resampled_scorer(task, actual, candidate.output, candidate.classes, positive)

    def scores(draws: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        weights = counts(draws, n)
        return score_base(draws, weights), score_candidate(draws, weights)

    old, new = scores(np.arange(n)[None, :])
    names = [name for name in new if name in old]

    def statistic(base_rows: np.ndarray, candidate_rows: np.ndarray, axis: int = -1) -> np.ndarray:
        was, now = scores(np.atleast_2d(base_rows).astype(np.intp))  # the same draws as candidate_rows: paired
        return np.stack([now[name] - was[name] for name in names])

    everyone = np.arange(n)
    found = bootstrap(
        (everyone, everyone),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        batch=BATCH,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = np.atleast_1d(found.confidence_interval.low), np.atleast_1d(found.confidence_interval.high)
    return tuple(
        Difference(
            name,
            round(float(old[name][0]), DIGITS),
            round(float(new[name][0]), DIGITS),
            round(float(low[i]), DIGITS),
            round(float(high[i]), DIGITS),
        )
        for i, name in enumerate(names)
    )


def compare(
    task: Task,
    actual: np.ndarray,
    base: Scored,
    candidate: Scored,
    positive: str | None,
    *,
    seed: int,
    groups: pd.DataFrame | None = None,
    resamples: int = RESAMPLES,
) -> Comparison:
    """Both models on the same rows, overall and per group of each column of `groups` (the slice columns of the
    same rows, as text); too few rows make a comparison that says so instead of judging."""
    n = len(actual)
    if n < MIN_ROWS:
        return unavailable(f"only {n} held-out rows neither model was trained on; {MIN_ROWS} are needed")
    notes: tuple[str, ...] = ()
    if n > MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(n, MAX_ROWS, replace=False))
        notes = (f"compared on a seeded sample of {MAX_ROWS:,} of the {n:,} shared rows",)
        actual, n = actual[keep], MAX_ROWS
        base, candidate = Scored(base.output[keep], base.classes), Scored(candidate.output[keep], candidate.classes)
        groups = groups.iloc[keep] if groups is not None else None
    overall = differences(task, actual, base, candidate, positive, seed=seed, resamples=resamples)
    found: list[Group] = []
    for column, raw in groups.items() if groups is not None else ():
        values = raw.fillna("(missing)").astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            rows = int(mask.sum())
            if rows < MIN_ROWS:
                found.append(Group(str(column), value, rows))
                continue
            try:
                part = differences(
                    task,
                    actual[mask],
                    Scored(base.output[mask], base.classes),
                    Scored(candidate.output[mask], candidate.classes),
                    positive,
                    seed=seed,
                    resamples=resamples,
                )
            except ComparisonError:
                part = ()
            found.append(Group(str(column), value, rows, part))
    return Comparison(rows=n, differences=overall, groups=tuple(found), seed=seed, resamples=resamples, notes=notes)


def by_metric(comparison: Comparison) -> Mapping[str, Difference]:
    return {d.metric: d for d in comparison.differences}
