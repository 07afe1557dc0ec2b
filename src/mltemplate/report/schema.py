"""The `pr-report` artifact's data model (report.json): what `make report` and `make verdict` write and `make
comment` reads back, every field typed and capped (string lengths, list and mapping sizes), so that a hostile
report is refused by name instead of being rendered. report/artifact.py reads and writes the artifact's files."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from mltemplate.comparison import Comparison, Difference, Group
from mltemplate.params import EvaluateParams

SCHEMA_VERSION: Literal[2] = 2


MAX_TEXT = 200


MAX_TAIL = 4000


MAX_ENTRIES = 500


MAX_POINTS = 5000


MAX_CLASSES = 50


MAX_RUNS = 20


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


Tail = Annotated[str, StringConstraints(max_length=MAX_TAIL)]


Number = Annotated[float, Field(allow_inf_nan=False)]


Count = Annotated[int, Field(ge=0, le=10**12)]


Scalar = bool | int | Number | Text | None


Sha = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]


Md5 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Failure(_Model):
    """A pipeline command that exited non-zero; `stage` is the first stage `dvc status` still reports changed."""

    command: Text
    returncode: int
    stage: Text | None = None
    tail: Tail = ""


class Confusion(_Model):
    """Counts by actual (rows) and predicted (columns) class, in `labels` order."""

    labels: list[Text] = Field(min_length=1, max_length=MAX_CLASSES)
    counts: list[list[Count]]

    @model_validator(mode="after")
    def _square(self) -> Confusion:
        size = len(self.labels)
        if len(self.counts) != size or any(len(row) != size for row in self.counts):
            raise ValueError(f"counts must be {size} x {size}, one row and one column per label")
        return self


Curve = Annotated[list[tuple[Number, Number]], Field(max_length=MAX_POINTS)]


CurveName = Literal["roc", "precision_recall"]


class Side(_Model):
    """What one branch has: flattened params, scalar metrics, rows per class, model size, curves, confusion."""

    label: Text
    params: dict[Text, Scalar] | None = Field(default=None, max_length=MAX_ENTRIES)
    metrics: dict[Text, Number] | None = Field(default=None, max_length=MAX_ENTRIES)
    support: dict[Text, Count] = Field(default_factory=dict, max_length=MAX_CLASSES)
    model_bytes: Count | None = None
    curves: dict[CurveName, Curve] = Field(default_factory=dict)
    confusion: Confusion | None = None
    importance: dict[Text, Number] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    """Permutation importance of the most important features (plots/importance.json), largest first."""
    data_md5: Md5 | None = None
    """The raw data's md5 (data.dvc): metrics of two sides compare only when they were scored on the same data."""


class DifferenceData(_Model):
    """One metric of both models on the same rows (mltemplate.comparison.Difference); no interval ends when the
    metric was undefined in some resamples."""

    metric: Text
    base: Number
    candidate: Number
    low: Number | None = None
    high: Number | None = None

    @classmethod
    def of(cls, found: Difference) -> DifferenceData:
        finite = found.measurable
        return cls(
            metric=found.metric,
            base=found.base,
            candidate=found.candidate,
            low=found.low if finite else None,
            high=found.high if finite else None,
        )

    def to_difference(self) -> Difference:
        nan = float("nan")
        return Difference(
            self.metric,
            self.base,
            self.candidate,
            nan if self.low is None else self.low,
            nan if self.high is None else self.high,
        )


class GroupData(_Model):
    column: Text
    value: Text
    rows: Count
    differences: list[DifferenceData] = Field(default_factory=list, max_length=MAX_ENTRIES)


class ComparisonData(_Model):
    """The PR's model against the base's on the same held-out rows (mltemplate.comparison.Comparison)."""

    rows: Count = 0
    differences: list[DifferenceData] = Field(default_factory=list, max_length=MAX_ENTRIES)
    groups: list[GroupData] = Field(default_factory=list, max_length=MAX_ENTRIES)
    reason: Tail | None = None
    notes: list[Text] = Field(default_factory=list, max_length=MAX_ENTRIES)
    confidence: Number = 0.95
    resamples: Count = 0
    seed: int = 0
    base_from: Text = ""
    """How the base's model was had: from DVC, or reproduced from its commit."""

    @classmethod
    def of(cls, found: Comparison, *, base_from: str = "") -> ComparisonData:
        return cls(
            rows=found.rows,
            differences=[DifferenceData.of(d) for d in found.differences],
            groups=[
                GroupData(
                    column=g.column[:MAX_TEXT],
                    value=g.value[:MAX_TEXT],
                    rows=g.rows,
                    differences=[DifferenceData.of(d) for d in g.differences],
                )
                for g in found.groups[:MAX_ENTRIES]
            ],
            reason=found.reason[:MAX_TAIL] if found.reason else None,
            notes=[note[:MAX_TEXT] for note in found.notes],
            confidence=found.confidence,
            resamples=found.resamples,
            seed=found.seed,
            base_from=base_from[:MAX_TEXT],
        )

    def to_comparison(self) -> Comparison:
        return Comparison(
            rows=self.rows,
            differences=tuple(d.to_difference() for d in self.differences),
            groups=tuple(
                Group(g.column, g.value, g.rows, tuple(d.to_difference() for d in g.differences)) for g in self.groups
            ),
            reason=self.reason,
            confidence=self.confidence,
            resamples=self.resamples,
            seed=self.seed,
            notes=tuple(self.notes),
        )


class LoadRun(_Model):
    """One load run of one service (see report/loadtest.py's LoadStats)."""

    requests: Count
    errors: Count
    duration_s: Number
    rps: Number
    p50_ms: Number
    p99_ms: Number


class ServingSide(_Model):
    runs: list[LoadRun] = Field(default_factory=list, max_length=MAX_RUNS)
    reason: Text = ""
    """Why there are no runs (empty when there are)."""


class Serving(_Model):
    """Alternating load runs of the base's and the PR's service: base, PR, base, PR, ..."""

    concurrency: int = Field(ge=1, le=1024)
    seconds: Number
    base: ServingSide
    pr: ServingSide


class PolicyData(_Model):
    """A gate policy (params.yaml's `evaluate`) as data."""

    thresholds: dict[Text, Number] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    tolerance: Number = 0.0
    slices: list[Text] = Field(default_factory=list, max_length=MAX_ENTRIES)
    max_slice_gap: dict[Text, Number] = Field(default_factory=dict, max_length=MAX_ENTRIES)

    @classmethod
    def of(cls, policy: EvaluateParams) -> PolicyData:
        return cls.model_validate(policy.model_dump(mode="json"))

    def to_policy(self) -> EvaluateParams:
        """The policy as the gate takes it; unvalidated, as it only describes what the PR asks for."""
        return EvaluateParams.model_construct(**self.model_dump())


Trust = Literal["self-reported", "trusted"]
"""Who computed a report's numbers: the PR's own code (`make report`, the pr-report job), or the base's code on
the PR's params and data (`make verdict`, the trusted verdict job)."""


class Report(_Model):
    """report.json: everything the comment shows, as data."""

    schema_version: Literal[2] = SCHEMA_VERSION
    pr_number: int | None = Field(default=None, ge=1, le=9_999_999_999)
    head_sha: Sha | None = None
    base_ref: Text
    base: Side
    pr: Side
    policy: PolicyData = Field(default_factory=lambda: PolicyData())
    """The PR's own gate policy (its params.yaml's `evaluate`), shown for its changes; the trusted gate uses the
    base's."""
    params_error: Tail | None = None
    failure: Failure | None = None
    stale: list[Text] = Field(default_factory=list, max_length=MAX_ENTRIES)
    """Committed outputs (dvc.lock, metrics.json, plots/) that differ from what the PR's pipeline reproduced."""
    serving: Serving | None = None
    comparison: ComparisonData | None = None
    """Both models on the same held-out rows, with intervals; None when the pipeline did not get that far."""
    trust: Trust = "self-reported"
    """What the report claims; `make comment` believes "trusted" only of the trusted verdict job's own report."""
    code_changes: list[Text] = Field(default_factory=list, max_length=MAX_ENTRIES)
    """The files the PR changes beyond params and data, when the trusted verdict job found some (then it ran
    nothing, and the PR's own numbers are all there is)."""

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1) + "\n"
