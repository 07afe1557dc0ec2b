"""The typed view of params.yaml: loaded once, validated at load time, frozen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mltemplate import estimators, metrics
from mltemplate.errors import Error
from mltemplate.paths import PARAMS_FILE

MODEL_SECTIONS = ("name", "seed", "data", "split", "model")
"""The params sections that make a model; the others (evaluate, monitor, retrain) are policy: they judge a model or
decide what data it may see next."""
LABELLER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
"""What a labeller (the name of a POST /feedback credential, or `make feedback`'s) may be called."""


class ParamsError(Error, ValueError):
    """params.yaml is missing, malformed or holds a value that is not allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class DataParams(_Section):
    raw: Path = Field(description="CSV tracked by data.dvc, relative to the repo root.")
    target: str = Field(min_length=1)
    positive_class: str | None = Field(
        default=None, min_length=1, description="Target value counted as positive; binary task only."
    )
    task: metrics.Task = "binary"
    features: list[str] | None = Field(
        default=None, description="Feature columns; null means every column but target and drop."
    )
    categorical: list[str] = Field(default_factory=list, description="Features that are categories.")
    drop: list[str] = Field(default_factory=list, description="Columns to ignore, e.g. ids.")

    @field_validator("raw", mode="before")
    @classmethod
    def _path_from_str(cls, value: Any) -> Any:
        return Path(value) if isinstance(value, str) else value

    @field_validator("positive_class", mode="before")
    @classmethod
    def _label_as_text(cls, value: Any) -> Any:
        # Labels are read from the CSV as text, so a YAML `1` must match the CSV's "1".
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _columns_consistent(self) -> DataParams:
        if self.task == "binary" and self.positive_class is None:
            raise ValueError("positive_class: required when task is binary (the class precision and recall are about)")
        if self.task != "binary" and self.positive_class is not None:
            raise ValueError(f"positive_class: applies to the binary task only; remove it for task {self.task!r}")
        named = set(self.features or []) | set(self.categorical) | set(self.drop)
        if self.target in named:
            raise ValueError(f"target {self.target!r} is also listed as a feature, categorical or drop column")
        if self.features is not None:
            unknown = sorted(set(self.categorical) - set(self.features))
            if unknown:
                raise ValueError(f"categorical columns {unknown} are not in features")
        return self


class SplitParams(_Section):
    test_size: float = Field(gt=0.0, lt=1.0, description="Fraction of rows held out for evaluate.")


class ModelParams(_Section):
    estimator: str
    hyperparameters: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per estimator name, keyword arguments for its constructor."
    )

    @property
    def selected(self) -> dict[str, Any]:
        """Hyperparameters of the chosen estimator."""
        return dict(self.hyperparameters.get(self.estimator, {}))


def _floats(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class EvaluateParams(_Section):
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Per metric of the task, a floor (higher is better) or a ceiling (lower is better).",
    )
    tolerance: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Largest drop against the base branch a PR may show."
    )
    slices: list[str] = Field(
        default_factory=list, description="Columns whose values split the held-out rows into groups, each scored."
    )
    max_slice_gap: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=dict, description="Per metric, the largest gap between the groups of any slice column."
    )

    @field_validator("thresholds", "max_slice_gap", "tolerance", mode="before")
    @classmethod
    def _ints_are_floats(cls, value: Any) -> Any:
        return _floats(value)


NUMERIC_DRIFT_METHODS = ("ks", "wasserstein", "psi")
"""ks: Kolmogorov-Smirnov p-value (drift below the threshold); wasserstein: earth mover's distance in units of the
reference's standard deviation; psi: population stability index (both: drift above the threshold)."""
CATEGORICAL_DRIFT_METHODS = ("chi2", "jensenshannon")
"""chi2: chi-squared test p-value of the two samples' counts (drift below); jensenshannon: distance (drift above)."""
P_VALUE_METHODS = frozenset({"ks", "chi2"})


class DriftTest(_Section):
    method: str
    threshold: float = Field(gt=0.0, description="p-value methods: drift below it; distances: drift above it.")

    @field_validator("threshold", mode="before")
    @classmethod
    def _int_is_float(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class DriftParams(_Section):
    numeric: DriftTest = Field(default_factory=lambda: DriftTest(method="ks", threshold=0.05))
    categorical: DriftTest = Field(default_factory=lambda: DriftTest(method="chi2", threshold=0.05))
    prediction: DriftTest = Field(
        default_factory=lambda: DriftTest(method="chi2", threshold=0.05),
        description="Test of the predicted labels against the model's labels for its training rows.",
    )
    bonferroni: bool = Field(
        default=True, description="Divide p-value thresholds by the number of features tested (family-wise rate)."
    )

    @field_validator("numeric")
    @classmethod
    def _numeric_method(cls, test: DriftTest) -> DriftTest:
        return _checked(test, NUMERIC_DRIFT_METHODS)

    @field_validator("categorical", "prediction")
    @classmethod
    def _categorical_method(cls, test: DriftTest) -> DriftTest:
        return _checked(test, CATEGORICAL_DRIFT_METHODS)


def _checked(test: DriftTest, allowed: tuple[str, ...]) -> DriftTest:
    if test.method not in allowed:
        raise ValueError(f"method: unknown method {test.method!r}; choose one of {list(allowed)}")
    if test.method in P_VALUE_METHODS and test.threshold >= 1.0:
        raise ValueError(f"threshold: {test.method} compares a p-value, so it must be below 1 (got {test.threshold})")
    return test


class DebounceParams(_Section):
    breaches: int = Field(default=2, ge=1, description="An alert fires when its check breached in this many ...")
    windows: int = Field(default=3, ge=1, le=100, description="... of the last this many monitor runs (this one too).")

    @model_validator(mode="after")
    def _breaches_fit(self) -> DebounceParams:
        if self.breaches > self.windows:
            raise ValueError(f"breaches ({self.breaches}) cannot exceed windows ({self.windows})")
        return self


WINDOW = re.compile(r"^([1-9][0-9]*)([mhd])$")
WINDOW_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class MonitorParams(_Section):
    """`make monitor`: which slice of the prediction log it checks, and when it alerts. Not a pipeline input."""

    window: str = Field(default="24h", description="How far back the monitor looks: <n>m, <n>h or <n>d.")
    min_rows: int = Field(default=100, ge=1, description="Fewer logged records in the window: no drift verdict.")
    min_labels: int = Field(default=30, ge=1, description="Fewer labelled records in the window: no quality verdict.")
    drift: DriftParams = Field(default_factory=DriftParams)
    thresholds: dict[str, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict,
        description="Per metric of the task on labelled production records: a floor, or a ceiling for an error "
        "(rmse, mae, mape, log_loss).",
    )
    debounce: DebounceParams = Field(default_factory=DebounceParams)

    @field_validator("window")
    @classmethod
    def _window_format(cls, value: str) -> str:
        if not WINDOW.match(value):
            raise ValueError(f"window {value!r} is not <n>m, <n>h or <n>d (e.g. 24h, 7d)")
        return value

    @property
    def window_seconds(self) -> int:
        found = WINDOW.match(self.window)
        if found is None:  # the validator let it through, so this cannot happen
            raise ParamsError(f"monitor.window {self.window!r} is not <n>m, <n>h or <n>d")
        return int(found[1]) * WINDOW_SECONDS[found[2]]

    @field_validator("thresholds", mode="before")
    @classmethod
    def _ints_are_floats(cls, value: Any) -> Any:
        return _floats(value)


class RetrainParams(_Section):
    """`make retrain`: how much production data one retrain may add, and whose labels it trains on. Not a pipeline
    input and not part of a model's identity."""

    max_new_share: float = Field(
        default=0.25, gt=0.0, le=1.0, description="Most production rows one retrain adds, as a share of the data's."
    )
    trusted_labellers: list[str] = Field(
        default_factory=lambda: ["default", "operator"],
        min_length=1,
        description="Labellers whose labels are trained on; the others are counted in the summary, never added.",
    )

    @field_validator("max_new_share", mode="before")
    @classmethod
    def _int_is_float(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("trusted_labellers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not LABELLER_NAME.match(name):
                raise ValueError(f"{name!r} is not a labeller name (1-32 of a-z, 0-9, _, -; first a letter or digit)")
        return value


class Params(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Model name: MLflow experiment, registry, Bento.")
    seed: int = Field(ge=0, description="random_state of the split and the estimator.")
    data: DataParams
    split: SplitParams
    model: ModelParams
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    monitor: MonitorParams = Field(default_factory=MonitorParams)
    retrain: RetrainParams = Field(default_factory=RetrainParams)

    def identity(self) -> dict[str, Any]:
        """The sections that make the model (MODEL_SECTIONS), as JSON values: what a training run logs to MLflow as
        its params and what the model key hashes. The policy that judges a model (evaluate, monitor) or picks its next
        data (retrain) is left out: a new threshold or retrain cap makes no new model and no new release."""
        return self.model_dump(mode="json", include=set(MODEL_SECTIONS))

    @model_validator(mode="after")
    def _fits_the_task(self) -> Params:
        task = self.data.task
        try:
            estimators.estimator_class(self.model.estimator, task)
        except ValueError as error:
            raise ValueError(f"model.estimator: {error}") from None
        for name, kwargs in self.model.hyperparameters.items():
            try:
                estimators.check_hyperparameters(name, kwargs, task=task)
            except ValueError as error:
                message = str(error)
                raise ValueError(
                    f"model.{message}"
                    if message.startswith("hyperparameters.")
                    else f"model.hyperparameters.{name}: {message}"
                ) from None
        known = {m.name: m for m in metrics.METRICS[task]}
        for section, key in (("evaluate", "thresholds"), ("evaluate", "max_slice_gap"), ("monitor", "thresholds")):
            for name, value in getattr(getattr(self, section), key).items():
                if name not in known:
                    raise ValueError(
                        f"{section}.{key}.{name}: not a metric of task {task!r}; choose from {list(known)}"
                    )
                if key == "thresholds" and known[name].unit_interval and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{section}.thresholds.{name}: {value} is outside [0, 1]")
        overlap = sorted({self.data.target} & set(self.evaluate.slices))
        if overlap:
            raise ValueError(f"evaluate.slices: {overlap[0]!r} is the target; slice by an input or a dropped column")
        if self.evaluate.max_slice_gap and not self.evaluate.slices:
            raise ValueError("evaluate.max_slice_gap: set evaluate.slices too (the columns whose groups it compares)")
        return self

    @field_validator("split", mode="before")
    @classmethod
    def _split_ints_are_floats(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("test_size"), int):
            return {**value, "test_size": float(value["test_size"])}
        return value


def _describe(error: ValidationError, path: Path) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "<top level>"
    message = first["msg"].removeprefix("Value error, ")
    nested = re.match(r"^([\w.]+): (.*)$", message)
    if first["type"] == "value_error" and nested:
        # A validator named a deeper key (e.g. hyperparameters.random_forest.n_estimators): report it whole.
        key, message = f"{key}.{nested[1]}" if first["loc"] else nested[1], nested[2]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif "input" in first and first["type"] not in {"value_error", "assertion_error"}:
        message = f"{message} (got {first['input']!r})"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{path}: {key}: {message}{more}"


def parse_params(raw: Any, *, source: Path = PARAMS_FILE) -> Params:
    """Validate a params mapping; errors are one line naming the key, e.g. `params.yaml: model.estimator: ...`."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(_describe(error, source)) from None


_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")  # YAML 1.2 (DVC): yes, no, on, off are text


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2's booleans, as DVC has them: `dvc exp run -S` unquotes `'yes'`, which YAML 1.1 would make True."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - read by the loader, never mutated
        first: [(tag, rx) for tag, rx in found if not tag.endswith(":bool")] or [("tag:yaml.org,2002:bool", _BOOL)]
        for first, found in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def read_yaml(text: str) -> Any:
    """A params.yaml's text as plain data, read as DVC reads it; raises yaml.YAMLError."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found (run from the repository root)") from None
    try:
        raw = read_yaml(text)
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_params(raw, source=path)
