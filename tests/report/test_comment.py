"""`make comment`: a hostile artifact yields a safe comment or a clear refusal, and the gate comes from the trusted
checkout's params.yaml and metrics.json, whatever the artifact says."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mltemplate.errors import CommandError
from mltemplate.params import EvaluateParams
from mltemplate.report import comment
from mltemplate.report.artifact import Confusion, Failure, LoadRun, Report, Serving, ServingSide, Side
from tests.conftest import ROOT, subprocess_env
from tests.report.test_artifact import png, write_artifact

THRESHOLDS = {"accuracy": 0.80, "recall": 0.70}
POLICY = EvaluateParams(thresholds=THRESHOLDS, tolerance=0.05)
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
]


@pytest.fixture
def trusted(tmp_path: Path) -> tuple[Path, Path]:
    """A trusted checkout's params.yaml (this repo's, with this test's thresholds) and metrics.json."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["evaluate"] = {"thresholds": THRESHOLDS, "tolerance": 0.05}
    params_file = tmp_path / "trusted" / "params.yaml"
    params_file.parent.mkdir()
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    metrics_file = params_file.parent / "metrics.json"
    metrics_file.write_text(json.dumps({"accuracy": 0.90, "recall": 0.80}), encoding="utf-8")
    return params_file, metrics_file


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
    }
    return Report.model_validate({**fields, **changes})


def hostile_report() -> Report:
    """Every string field the artifact has, filled with something that must not reach the comment raw."""
    text = "\n".join(HOSTILE)
    labels = HOSTILE[:3]
    side = Side(
        label=HOSTILE[0],
        params={h: h for h in HOSTILE},
        metrics={**{h: 0.5 for h in HOSTILE}, "accuracy": 0.91, "recall": 0.8},
        support={h: 1 for h in HOSTILE},
        confusion=Confusion(labels=labels, counts=[[1] * 3] * 3),
        curves={"roc": [(0.0, 0.0), (1.0, 1.0)]},
    )
    serving = Serving(
        concurrency=2, seconds=1.0, base=ServingSide(reason=HOSTILE[2]), pr=ServingSide(reason=HOSTILE[3])
    )
    return report(
        base_ref=HOSTILE[1],
        base=side,
        pr=side,
        failure=Failure(command=HOSTILE[4], returncode=1, stage=HOSTILE[5], tail=text),
        params_error=text,
        stale=HOSTILE,
        serving=serving,
        thresholds={h: 0.0 for h in HOSTILE},
    )


def make_comment(artifact: Path, out: Path, trusted: tuple[Path, Path], *extra: str) -> None:
    comment.main([str(artifact), "--out", str(out), "--params", str(trusted[0]), "--metrics", str(trusted[1]), *extra])


def test_hostile_text_never_reaches_the_comment_raw(tmp_path: Path, trusted: tuple[Path, Path]) -> None:
    artifact = write_artifact(tmp_path / "artifact", hostile_report(), **{"pr_roc.png": png()})
    make_comment(artifact, tmp_path / "out", trusted)
    text = (tmp_path / "out" / "comment.md").read_text(encoding="utf-8")
    for fragment in RAW_FRAGMENTS:
        assert fragment not in text, fragment
    assert "](" not in text  # no link and no image at all
    assert text.count(comment.MARKER) == 1
    assert "&#64;octocat" in text  # shown, escaped


def test_artifact_text_is_only_inside_code_or_pre(tmp_path: Path, trusted: tuple[Path, Path]) -> None:
    artifact = write_artifact(tmp_path / "artifact", hostile_report())
    make_comment(artifact, tmp_path / "out", trusted)
    text = (tmp_path / "out" / "comment.md").read_text(encoding="utf-8")
    outside = re.sub(r"<code>.*?</code>|<pre>.*?</pre>", "", text, flags=re.DOTALL)
    assert "&#" not in outside  # every escaped (artifact) string sits in a code span or a pre block


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_leaves_only_letters_digits_and_entities(text: str) -> None:
    assert re.fullmatch(r"(?:[A-Za-z0-9 .,\-…]|&#\d+;)*", comment.escape(text))


def test_a_forged_pass_is_recomputed_from_the_trusted_thresholds(tmp_path: Path, trusted: tuple[Path, Path]) -> None:
    # The PR lowered its own thresholds to 0 and its recall is under the trusted floor.
    forged = report({"accuracy": 0.95, "recall": 0.60}, thresholds={"accuracy": 0.0, "recall": 0.0})
    make_comment(write_artifact(tmp_path / "artifact", forged), tmp_path / "out", trusted)
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["state"] == "failure"
    assert "recall 0.6000 is below its threshold 0.7000" in status["description"]
    assert "### ❌ Quality gate failed" in (tmp_path / "out" / "comment.md").read_text()


def test_the_tolerance_uses_the_trusted_metrics(tmp_path: Path, trusted: tuple[Path, Path]) -> None:
    # The artifact claims a low base, so the PR's drop would look small; the trusted metrics.json says 0.90.
    low_base = Side(label="main", metrics={"accuracy": 0.80, "recall": 0.80})
    make_comment(
        write_artifact(tmp_path / "a", report({"accuracy": 0.82, "recall": 0.8}, base=low_base)),
        tmp_path / "o",
        trusted,
    )
    status = json.loads((tmp_path / "o" / "status.json").read_text())
    assert status["state"] == "failure"
    assert "accuracy fell 0.0800 behind the base" in status["description"]


def test_a_passing_pr_gets_a_success_status_and_its_number(tmp_path: Path, trusted: tuple[Path, Path]) -> None:
    make_comment(write_artifact(tmp_path / "artifact", report()), tmp_path / "out", trusted)
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status == {
        "state": "success",
        "context": comment.STATUS_CONTEXT,
        "description": status["description"],
    }
    assert status["description"].startswith("passed (params.yaml")
    assert (tmp_path / "out" / "pr-number").read_text() == "7\n"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"failure": Failure(command="dvc repro", returncode=1, stage="train")}, "the pipeline failed"),
        ({"stale": ["dvc.lock", "metrics.json"]}, "2 committed output(s) are stale"),
        ({"params_error": "params.yaml: seed: bad"}, "the PR's params.yaml is invalid"),
    ],
)
def test_a_failure_stale_outputs_or_bad_params_fail_the_gate(changes: dict[str, object], reason: str) -> None:
    verdict = comment.judge_report(report(None, **changes), policy=POLICY, base_metrics=None, source="trusted")
    assert any(failure.startswith(reason) for failure in verdict.failures)
    assert verdict.status()["state"] == "failure"


def test_stale_files_are_named_in_the_comment() -> None:
    verdict = comment.ReportGate(("x",), "trusted")
    text = comment.render(report(stale=["dvc.lock", "plots/roc.json"]), verdict)
    assert "### ❌ Stale committed outputs" in text
    assert "- <code>dvc.lock</code>" in text
    assert "- <code>plots&#47;roc.json</code>" in text


def test_a_head_sha_other_than_the_run_s_is_refused(tmp_path: Path, trusted: tuple[Path, Path]) -> None:
    with pytest.raises(CommandError, match="refused the report artifact: head_sha is 'bbbb"):
        make_comment(write_artifact(tmp_path / "a", report()), tmp_path / "out", trusted, "--head-sha", "c" * 40)
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["state"] == "failure"
    assert not (tmp_path / "out" / "comment.md").exists()


def test_a_refused_artifact_writes_a_failure_status_and_no_comment(tmp_path: Path, trusted: tuple[Path, Path]) -> None:
    artifact = write_artifact(tmp_path / "a", report(), **{"pr_roc.png": b"GIF89a"})
    with pytest.raises(CommandError, match=re.escape("pr_roc.png: not a PNG")):
        make_comment(artifact, tmp_path / "out", trusted)
    assert json.loads((tmp_path / "out" / "status.json").read_text())["state"] == "failure"
    assert not (tmp_path / "out" / "comment.md").exists()


def test_plots_are_published_only_when_asked_and_only_validated_pngs(
    tmp_path: Path, trusted: tuple[Path, Path]
) -> None:
    artifact = write_artifact(tmp_path / "a", report(), **{"pr_roc.png": png(), "base_roc.png": png()})
    make_comment(artifact, tmp_path / "private", trusted)
    assert "](" not in (tmp_path / "private" / "comment.md").read_text()
    assert not list((tmp_path / "private").glob("*.png"))

    make_comment(artifact, tmp_path / "public", trusted, "--publish-plots")
    text = (tmp_path / "public" / "comment.md").read_text()
    assert re.findall(r"\]\(([^)]*)\)", text) == ["./base_roc.png", "./pr_roc.png"]
    assert (tmp_path / "public" / "pr_roc.png").read_bytes() == png()


def test_curves_become_mermaid_line_charts_with_both_sides() -> None:
    base = Side(label="main", curves={"roc": [(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)]})
    pr = Side(label="PR", curves={"roc": [(0.0, 0.0), (0.1, 0.9), (1.0, 1.0)]})
    lines = comment.render_chart("roc", base, pr)
    assert lines[0] == "```mermaid"
    assert "xychart-beta" in lines
    series = [line for line in lines if line.strip().startswith("line [")]
    assert len(series) == 2
    assert series[0].strip().startswith("line [0.000, 0.000")  # base: 0 until fpr 0.5
    assert series[1].strip().startswith("line [0.000, 0.000, 0.900")  # PR: 0.9 from fpr 0.1


def test_step_curve_interpolates_precision_from_the_right() -> None:
    points = [(1.0, 0.5), (0.5, 0.8), (0.0, 1.0)]
    ys = comment.step_curve(points, interpolate_from_right=True)
    assert ys[0] == 1.0
    assert ys[comment.GRID.index(0.5)] == 0.8
    assert ys[-1] == 0.5


def test_confusion_matrix_is_a_table() -> None:
    lines = comment.render_confusion("PR", Confusion(labels=["no", "yes"], counts=[[5, 1], [2, 7]]))
    assert "| <code>no</code> | 5 | 1 |" in lines
    assert "| <code>yes</code> | 2 | 7 |" in lines


def runs(*rps: float) -> list[LoadRun]:
    return [LoadRun(requests=100, errors=0, duration_s=1.0, rps=r, p50_ms=1000 / r, p99_ms=2000 / r) for r in rps]


@pytest.mark.parametrize(
    ("base", "pr", "shown"),
    [
        ([372.0, 613.0, 500.0], [450.0, 520.0, 600.0], "no measurable difference"),
        ([108.9, 109.7], [121.9, 146.9], "no measurable difference"),  # apart, but within the resolution
        ([100.0, 110.0, 105.0], [200.0, 210.0, 190.0], "🟢 +90%"),
        ([200.0, 210.0, 190.0], [100.0, 110.0, 105.0], "🔴 -48%"),
    ],
)
def test_throughput_says_no_measurable_difference_within_the_noise(
    base: list[float], pr: list[float], shown: str
) -> None:
    assert (
        comment.difference(
            comment.Spread.of(runs(*base), "rps"), comment.Spread.of(runs(*pr), "rps"), higher_is_better=True
        )
        == shown
    )


def test_serving_shows_medians_with_their_spread() -> None:
    serving = Serving(concurrency=4, seconds=5.0, base=ServingSide(runs=runs(100, 120, 110)), pr=ServingSide(runs=[]))
    text = "\n".join(comment.render_serving(report(serving=serving)))
    assert "| Throughput | 110.0 req/s (100.0 to 120.0) | — | — |" in text
    assert "Medians (min to max) of 3 alternating load runs" in text


def test_make_comment_renders_a_downloaded_artifact(tmp_path: Path) -> None:
    artifact = write_artifact(tmp_path / "downloaded", hostile_report())
    result = subprocess.run(
        ["make", "comment", "RUN=", f"ARTIFACT={artifact}", f"COMMENT_DIR={tmp_path / 'out'}"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "@octocat" not in (tmp_path / "out" / "comment.md").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "out" / "status.json").read_text())["state"] == "failure"


def test_an_artifact_too_big_to_comment_is_refused(tmp_path: Path, trusted: tuple[Path, Path]) -> None:
    # Within every per-field cap, yet the escaped comment would pass GitHub's limit.
    params = {f"key{i}" + "&" * 150: "<" * 190 for i in range(400)}
    big = report(base=Side(label="main", params={}), pr=Side(label="PR", params=params, metrics={"accuracy": 0.9}))
    with pytest.raises(CommandError, match="the rendered comment has"):
        make_comment(write_artifact(tmp_path / "a", big), tmp_path / "out", trusted)
    assert json.loads((tmp_path / "out" / "status.json").read_text())["state"] == "failure"


def test_the_tolerance_applies_only_when_the_pr_keeps_the_base_data() -> None:
    worse = {"accuracy": 0.70, "recall": 0.80}
    same = report(worse, pr=Side(label="PR", metrics=worse, data_md5="a" * 32))
    kwargs = {"policy": EvaluateParams(tolerance=0.05), "base_metrics": {"accuracy": 0.90}, "source": "trusted"}
    assert comment.judge_report(same, base_data_md5="a" * 32, **kwargs).failures  # type: ignore[arg-type]
    assert not comment.judge_report(same, base_data_md5="b" * 32, **kwargs).failures  # type: ignore[arg-type]


def test_importance_is_a_table_of_escaped_feature_names() -> None:
    pr = Side(label="PR", metrics={"accuracy": 0.9}, importance={"@team <b>x</b>": 0.25, "age": 0.1})
    text = "\n".join(comment.render_importance(report(pr=pr)))
    assert "| <code>age</code> | — | 0.1000 |" in text
    assert "@team" not in text
    assert "<b>" not in text
