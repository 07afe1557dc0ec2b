"""Nested mappings as dotted keys."""

from __future__ import annotations

from mltemplate.dotted import flatten


def test_flatten_nested_params() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": None}) == {"a.b": 1, "a.c.d": "x", "e": None}
