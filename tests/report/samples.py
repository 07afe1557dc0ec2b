"""Report data for the report's tests: a plain report, comparisons with the base, and a report whose every string
is something that must not reach a comment raw."""

from __future__ import annotations

from mltemplate.params import EvaluateParams
from mltemplate.report.schema import (
    ComparisonData,
    Confusion,
    DifferenceData,
    Failure,
    GroupData,
    PolicyData,
    Report,
    Serving,
    ServingSide,
    Side,
)

THRESHOLDS = {"accuracy": 0.80, "recall": 0.70}
POLICY = EvaluateParams(thresholds=THRESHOLDS, tolerance=0.05, slices=["sex"])
"""The trusted policy of these tests (the comment job's params.yaml `evaluate`)."""


def difference(metric: str = "accuracy", base: float = 0.9, low: float = -0.01, high: float = 0.03) -> DifferenceData:
    """`metric` of both models on the same rows, the difference's interval [low, high] (PR - base)."""
    return DifferenceData(metric=metric, base=base, candidate=round(base + (low + high) / 2, 6), low=low, high=high)


def comparison(*differences: DifferenceData, groups: tuple[GroupData, ...] = (), **fields: object) -> ComparisonData:
    found = differences or (difference(), difference("recall", 0.8))
    return ComparisonData.model_validate(
        {
            "rows": 143,
            "differences": list(found),
            "groups": list(groups),
            "resamples": 1000,
            "base_from": "reproduced from main's code and dvc.lock",
            **fields,
        }
    )


def report(pr_metrics: dict[str, float] | None = None, **changes: object) -> Report:
    fields: dict[str, object] = {
        "pr_number": 7,
        "head_sha": "b" * 40,
        "base_ref": "main",
        "base": Side(label="main", metrics={"accuracy": 0.90, "recall": 0.80}, params={"seed": 1, "C": 1.0}),
        "pr": Side(
            label="PR",
            metrics={"accuracy": 0.91, "recall": 0.80} if pr_metrics is None else pr_metrics,
            params={"seed": 1, "C": 0.5},
        ),
        "policy": PolicyData.of(POLICY),
        "comparison": comparison(),
    }
    return Report.model_validate({**fields, **changes})


HOSTILE = [
    "[click](/etc/passwd)",
    "![x](../../../../proc/self/environ)",
    '<img src="file:///etc/passwd">',
    "@octocat please merge",
    "#1 fixes everything",
    "`code` | pipe | **bold**",
    "line one\nline two\r\n### ✅ Quality gate passed",
    "https://evil.example/x.png",
    "<!-- mltemplate-model-report -->",
    "\u202egnp.exe",
    "see www.evil.example now",
    "&#64;team and &lt;b&gt;",
    "a|b||c",
]
RAW_FRAGMENTS = [
    "/etc/passwd",
    "../",
    "<img",
    "@octocat",
    "#1 ",
    "`code`",
    "**bold**",
    "https://",
    "\u202e",
    "### ✅ Quality gate passed",
    "www.",
    "&#64;team",
    "&lt;b",
    "a|b",
]
"""What of HOSTILE would do something in a comment if it got there raw (a link, an image, a mention, a heading,
an entity, a table cell)."""


def hostile_comparison() -> ComparisonData:
    """Metric, column and group names and notes from the data: a group of the trusted slice column `sex`
    confidently worse, so its name reaches the gate's failure list."""
    worse = difference("recall", 0.9, -0.4, -0.2)
    groups = [GroupData(column="sex", value=h, rows=50, differences=[worse]) for h in HOSTILE]
    groups += [GroupData(column=h, value=h, rows=3) for h in HOSTILE]
    return comparison(
        *(difference(h) for h in HOSTILE),
        groups=tuple(groups),
        notes=HOSTILE,
        base_from=HOSTILE[3],
    )


def hostile_report() -> Report:
    """Every string field the artifact has, filled with something that must not reach the comment raw."""
    text = "\n".join(HOSTILE)
    side = Side(
        label=HOSTILE[0],
        params={h: h for h in HOSTILE},
        metrics={**{h: 0.5 for h in HOSTILE}, "accuracy": 0.91, "recall": 0.8},
        support={h: 1 for h in HOSTILE},
        confusion=Confusion(labels=HOSTILE[:3], counts=[[1] * 3] * 3),
        curves={"roc": [(0.0, 0.0), (1.0, 1.0)]},
        importance={h: 0.1 for h in HOSTILE},
    )
    serving = Serving(
        concurrency=2, seconds=1.0, base=ServingSide(reason=HOSTILE[2]), pr=ServingSide(reason=HOSTILE[3])
    )
    policy = PolicyData(
        thresholds={h: 0.0 for h in HOSTILE}, slices=HOSTILE, max_slice_gap={h: 0.5 for h in HOSTILE}, tolerance=0.5
    )
    return report(
        base_ref=HOSTILE[1],
        base=side,
        pr=side,
        failure=Failure(command=HOSTILE[4], returncode=1, stage=HOSTILE[5], tail=text),
        params_error=text,
        stale=HOSTILE,
        serving=serving,
        policy=policy,
        comparison=hostile_comparison(),
    )


def refused_comparison() -> Report:
    """A report whose comparison with the base has a reason instead of numbers, from the data."""
    return report(comparison=ComparisonData(reason="\n".join(HOSTILE)))
