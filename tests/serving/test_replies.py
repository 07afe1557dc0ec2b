"""A 400 from the app names its first field up front and lists at most MAX_ERRORS errors."""

from __future__ import annotations

from mltemplate.serving.payloads import MAX_ERRORS, TOO_MANY_ERRORS
from mltemplate.serving.replies import name_validation_error


def test_whole_body_errors_are_named_body() -> None:
    named = name_validation_error({"detail": [{"loc": [], "msg": "Invalid JSON"}, {"loc": ["x"], "msg": "m"}]})
    assert (named["field"], named["error"]) == ("body", "body: Invalid JSON (+1 more)")


def test_at_most_max_errors_are_listed_and_the_uncounted_rest_is_said() -> None:
    detail = [{"type": "extra_forbidden", "loc": ["records", 0, f"k{i}"], "msg": "Extra inputs"} for i in range(50)]
    detail.append({"type": TOO_MANY_ERRORS, "loc": [], "msg": "7000 more errors not listed"})
    named = name_validation_error({"detail": detail})
    assert len(named["detail"]) == MAX_ERRORS + 1
    assert named["error"] == f"records.0.k0: Extra inputs (+{MAX_ERRORS - 1} more; 7000 more errors not listed)"


def test_a_long_field_name_is_cut() -> None:
    named = name_validation_error({"detail": [{"loc": ["records", 0, "k" * 10_000], "msg": "Extra inputs"}]})
    assert len(named["field"]) < 100
