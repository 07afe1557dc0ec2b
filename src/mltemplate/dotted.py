"""Nested mappings (params, metrics) as dotted keys, the way `dvc exp run -S`, `dvc metrics` and MLflow spell them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"model": {"C": 1}} -> {"model.C": 1}; lists and empty mappings stay values."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value} if prefix else {}
