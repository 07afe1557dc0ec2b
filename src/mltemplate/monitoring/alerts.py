"""What one monitor run found (a Check per feature, prediction and metric) and which breaches become alerts:
a check alerts when it breached in `breaches` of the last `windows` runs, so one noisy window pages no one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from mltemplate.params import DebounceParams

Kind = Literal["drift", "quality"]
KINDS: tuple[Kind, ...] = ("drift", "quality")


@dataclass(frozen=True)
class Check:
    """One test of one feature, of the predicted labels, or of one metric."""

    kind: Kind
    name: str = ""  # the feature, "prediction", or the metric
    method: str = ""
    value: float = 0.0
    threshold: float = 0.0
    breached: bool = False
    higher_is_worse: bool = False  # distances: drift above the threshold; p-values and metrics: trouble below it

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def describe(self) -> str:
        """`drift mean_radius: ks 0.0001 < 0.0016` - what, its value, the threshold it crossed (or kept)."""
        relation = {(True, True): ">", (True, False): "<", (False, True): "<=", (False, False): ">="}[
            (self.breached, self.higher_is_worse)
        ]
        return f"{self.kind} {self.name}: {self.method} {self.value:.4g} {relation} {self.threshold:.4g}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Check:
        return cls(**raw)


def debounce(checks: Sequence[Check], history: Iterable[Iterable[str]], rule: DebounceParams) -> list[Check]:
    """The breached checks that also breached often enough before: `history` holds the breached keys of earlier
    runs, newest first; the current run counts as one of the `rule.windows`."""
    earlier = list(history)[: rule.windows - 1]
    counts = Counter(key for keys in earlier for key in set(keys))
    return [c for c in checks if c.breached and counts[c.key] + 1 >= rule.breaches]
