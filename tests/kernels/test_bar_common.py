"""tf_bar_common.first_order, the recursion under every EMA and Wilder smoothing of the bar
kernels, against scipy.signal.lfilter (the loop it replaces) and an explicit loop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter
from tf_bar_common import first_order


def _loop(x: np.ndarray, keep: float, before: float) -> np.ndarray:
    out, y = np.empty(len(x)), before
    for i, v in enumerate(x):
        y = keep * y + v
        out[i] = y
    return out


@pytest.mark.parametrize("keep", [0.0, 1 / 3, 13 / 14, 74 / 76, 0.999])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 64, 1000, 31_000])
def test_first_order_equals_the_loop(keep: float, n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 100 + 100
    before = 101.5
    got = first_order(x, keep, before)
    if n:
        # judged against the size of the terms each value sums (a sum near 0 keeps only
        # that much absolute precision, in any order of addition)
        terms = np.max(np.abs(x)) / (1.0 - keep)
        want = lfilter([1.0], [1.0, -keep], x, zi=[keep * before])[0]
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15 * terms)
        np.testing.assert_allclose(got, _loop(x, keep, before), rtol=1e-13, atol=1e-15 * terms)
    else:
        assert got.shape == (0,)


def test_a_nan_makes_every_later_value_nan() -> None:
    x = np.arange(20.0)
    x[7] = np.nan
    got = first_order(x, 0.5, 1.0)
    assert np.isfinite(got[:7]).all() and np.isnan(got[7:]).all()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(_loop(x, 0.5, 1.0)))
