"""The plot points of the evaluate stage: curves thinned to MAX_POINTS, keeping their ends."""

from __future__ import annotations

import numpy as np

from mltemplate.pipeline.curves import MAX_POINTS, _thin


def test_curves_of_a_large_split_are_thinned_keeping_their_ends() -> None:
    rng = np.random.default_rng(0)
    x, y = np.sort(rng.random(10_000)), np.sort(rng.random(10_000))
    thin_x, thin_y = _thin(x, y)
    assert len(thin_x) == len(thin_y) <= MAX_POINTS
    assert (thin_x[0], thin_x[-1], thin_y[-1]) == (x[0], x[-1], y[-1])
    short = x[:10]
    assert _thin(short, short)[0] is short
