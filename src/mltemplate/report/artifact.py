"""The `pr-report` artifact: data, never markdown. `make report` (untrusted: it runs the PR's code) writes
report.json plus allowlisted plot PNGs; `make comment` (trusted) validates them here and renders the comment.

Everything has a cap (string lengths, list and mapping sizes, file sizes, image dimensions), so a hostile artifact
is refused with a message that names the file and field instead of being rendered."""

from __future__ import annotations

import json
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from mltemplate.comparison import Comparison, Difference, Group
from mltemplate.errors import Error
from mltemplate.params import EvaluateParams
from mltemplate.plots import PLOTS

SCHEMA_VERSION: Literal[2] = 2
DATA_FILE = "report.json"
REPORT_FILE = "report.md"
"""The human-readable report for the job summary; allowed in the artifact, never read by `make comment`."""
IMAGE_FILES = frozenset(f"{side}_{plot.name}.png" for side in ("base", "pr") for plot in PLOTS)
"""The PNGs kept in the artifact: every plot of mltemplate.plots, once per side (base_<plot>.png, pr_<plot>.png)."""
ALLOWED_FILES = frozenset({DATA_FILE, REPORT_FILE}) | IMAGE_FILES

MAX_DATA_BYTES = 2 * 2**20
MAX_REPORT_BYTES = 2 * 2**20
MAX_IMAGE_BYTES = 2 * 2**20
MAX_IMAGE_SIDE = 4096
MAX_TEXT = 200
MAX_TAIL = 4000
MAX_ENTRIES = 500
MAX_POINTS = 5000
MAX_CLASSES = 50
MAX_RUNS = 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ArtifactError(Error, ValueError):
    """The artifact is not what `make report` writes: the message names the file and the field."""


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


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "<top level>"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{DATA_FILE}: {where}: {first['msg']}{more}"


def parse(data: bytes) -> Report:
    """report.json's bytes as a Report; ArtifactError naming the first bad field."""
    if len(data) > MAX_DATA_BYTES:
        raise ArtifactError(f"{DATA_FILE}: {len(data)} bytes, more than the {MAX_DATA_BYTES} allowed")
    try:
        return Report.model_validate_json(data)
    except ValidationError as error:
        raise ArtifactError(_describe(error)) from None


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; ValueError when `data` is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 24:
        raise ValueError("not a PNG (no PNG signature and IHDR chunk)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_png(name: str, data: bytes) -> bytes:
    if len(data) > MAX_IMAGE_BYTES:
        raise ArtifactError(f"{name}: {len(data)} bytes, more than the {MAX_IMAGE_BYTES} allowed")
    try:
        width, height = png_size(data)
    except ValueError as error:
        raise ArtifactError(f"{name}: {error}") from None
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise ArtifactError(f"{name}: {width}x{height} pixels; each side must be in 1..{MAX_IMAGE_SIDE}")
    return data


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file, refusing symlinks (O_NOFOLLOW) and anything over `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise ArtifactError(f"{path.name}: cannot be opened as a regular file ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ArtifactError(f"{path.name}: not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ArtifactError(f"{path.name}: more than the {limit} bytes allowed")
    return data


@dataclass(frozen=True)
class Loaded:
    """A validated artifact: the report data and the PNGs by file name."""

    report: Report
    images: dict[str, bytes]


def load(directory: Path) -> Loaded:
    """Validate an artifact directory: only allowlisted names, regular files (no symlinks, no folders), size caps,
    a valid report.json and real PNGs; ArtifactError naming the first problem."""
    if directory.is_symlink() or not directory.is_dir():
        raise ArtifactError(f"{directory}: not a directory (the downloaded `pr-report` artifact)")
    images: dict[str, bytes] = {}
    report: Report | None = None
    with os.scandir(directory) as entries:
        names = sorted((entry.name, entry.is_symlink(), entry.is_file(follow_symlinks=False)) for entry in entries)
    for name, is_link, is_file in names:
        if name not in ALLOWED_FILES:
            raise ArtifactError(f"{name!r}: not an allowed file name; allowed: {sorted(ALLOWED_FILES)}")
        if is_link or not is_file:
            raise ArtifactError(f"{name}: must be a regular file, not a symlink or a folder")
        if name == DATA_FILE:
            report = parse(_read_regular(directory / name, MAX_DATA_BYTES))
        elif name in IMAGE_FILES:
            images[name] = check_png(name, _read_regular(directory / name, MAX_IMAGE_BYTES))
        elif (directory / name).stat().st_size > MAX_REPORT_BYTES:
            raise ArtifactError(f"{name}: more than the {MAX_REPORT_BYTES} bytes allowed")
    if report is None:
        raise ArtifactError(f"{DATA_FILE} is missing from {directory}")
    return Loaded(report=report, images=images)
