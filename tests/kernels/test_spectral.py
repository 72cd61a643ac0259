"""udf.spectral_features and python_udfs/tf_spectral.py against an oracle written here from G6
(no library computes these features): the periodogram by an explicit DFT sum, cross-checked
with scipy.signal.periodogram, and the features by plain Python loops, with band membership
decided in exact fractions."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import psycopg
import pytest
import scipy.signal
import tf_spectral
from tf_common import InputError

from tests.kernels.cases import signals
from tests.kernels.conftest import assert_close, assert_sql_error

TOLERANCE = 1e-10  # relative, absolute below 1
KEYS = (
    "dominant_freq",
    "dominant_period",
    "band_low_share",
    "band_mid_share",
    "band_high_share",
    "spectral_entropy",
)
CASES = [name for name in signals() if name not in ("one", "two", "with_nan")]


def dft_power(x: np.ndarray) -> np.ndarray:
    """|X_k|^2 for k = 0 .. floor(n/2) of the demeaned x, summed term by term; the phase
    k t is reduced mod n in integers so that it stays exact for long x."""
    n = len(x)
    demeaned = x - math.fsum(x) / n
    t = np.arange(n)
    return np.array(
        [
            abs(np.sum(demeaned * np.exp(-2j * np.pi * ((k * t) % n) / n))) ** 2
            for k in range(n // 2 + 1)
        ]
    )


def scipy_power(x: np.ndarray) -> np.ndarray:
    """scipy's one-sided periodogram scaled back to |X_k|^2: its 'spectrum' scaling divides
    by n^2 and doubles every bin but DC and (n even) Nyquist."""
    n = len(x)
    _, pxx = scipy.signal.periodogram(
        x, detrend="constant", window="boxcar", scaling="spectrum", return_onesided=True
    )
    doubled = np.ones(len(pxx), dtype=bool)
    doubled[0] = False
    if n % 2 == 0:
        doubled[-1] = False
    return pxx * n * n / np.where(doubled, 2.0, 1.0)


def oracle(x: np.ndarray) -> dict[str, float]:
    n = len(x)
    nan = float("nan")
    if len(set(x.tolist())) == 1:
        return {key: nan for key in KEYS}
    power = dft_power(x)
    bins = range(1, n // 2 + 1)
    total = math.fsum(power[k] for k in bins)
    best = 1
    for k in bins:
        if power[k] > power[best]:
            best = k
    bands = {"band_low_share": [], "band_mid_share": [], "band_high_share": []}
    for k in bins:
        f = Fraction(k, n)
        band = "low" if f < Fraction(1, 32) else "mid" if f < Fraction(1, 8) else "high"
        bands[f"band_{band}_share"].append(power[k])
    entropy = 0.0
    for k in bins:
        p = power[k] / total
        if p > 0:
            entropy -= p * math.log(p)
    return {
        "dominant_freq": best / n,
        "dominant_period": n / best,
        **{key: math.fsum(values) / total for key, values in bands.items()},
        "spectral_entropy": entropy / math.log(len(bins)),
    }


def assert_features(got: dict, want: dict, n: int) -> None:
    assert set(got) == {*KEYS, "n"}
    assert got["n"] == n
    for key in KEYS:
        value = float("nan") if got[key] is None else got[key]  # jsonb null is NaN
        assert_close(value, want[key], TOLERANCE)


@pytest.mark.parametrize("case", [name for name in CASES if name != "constant"])
def test_oracle_periodogram_is_scipys(case: str) -> None:
    x = signals()[case]
    assert_close(scipy_power(x) / len(x), dft_power(x) / len(x), TOLERANCE)


@pytest.mark.parametrize("case", CASES)
def test_python_equals_oracle(case: str) -> None:
    x = signals()[case]
    assert_features(tf_spectral.spectral_features(x.tolist()), oracle(x), len(x))


@pytest.mark.parametrize("n", [4, 5, 64, 100, 257, 600, 4096])
def test_a_tone_on_a_bin_is_found_exactly(n: int) -> None:
    t = np.arange(n)
    for k in sorted({1, 2, n // 8, n // 3, (n - 1) // 2, n // 2} - {0}):
        x = 0.7 + 2.0 * np.cos(2 * np.pi * k * t / n + 0.3)
        if n % 2 == 0 and k == n // 2:
            x = 0.7 + 2.0 * np.cos(np.pi * t)  # at Nyquist only the cosine phase survives
        got = tf_spectral.spectral_features(x)
        assert got["dominant_freq"] == k / n
        assert got["dominant_period"] == n / k
        band = "low" if 32 * k < n else "mid" if 8 * k < n else "high"
        for name in ("low", "mid", "high"):
            assert got[f"band_{name}_share"] == pytest.approx(float(name == band), abs=1e-10)
        assert got["spectral_entropy"] == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize(("n", "k", "band"), [(64, 2, "mid"), (64, 8, "high"), (392, 49, "high")])
def test_band_limits_are_exact(n: int, k: int, band: str) -> None:
    # k/n is exactly 1/32 or 1/8: the bin belongs to the band starting there. For n = 392,
    # np.fft.rfftfreq(392)[49] = 49 * (1/392) rounds below 1/8.
    x = np.sin(2 * np.pi * k * np.arange(n) / n)
    got = tf_spectral.spectral_features(x)
    assert got[f"band_{band}_share"] == pytest.approx(1.0, abs=1e-10)


def test_ties_go_to_the_first_bin_and_a_flat_spectrum_has_entropy_one() -> None:
    # an impulse has a flat spectrum; for n = 4 the FFT is exact, so bins 1 and 2 tie
    got = tf_spectral.spectral_features([1.0, 0.0, 0.0, 0.0])
    assert got["dominant_freq"] == 0.25
    assert got["dominant_period"] == 4.0
    assert got["spectral_entropy"] == 1.0
    assert got["band_high_share"] == 1.0


@pytest.mark.parametrize("n", [4, 7, 10, 96])
def test_constant_input_has_no_dominant_frequency(n: int) -> None:
    # 0.1 is not a sum of n equal doubles: the demeaned values are a tiny nonzero constant
    got = tf_spectral.spectral_features(np.full(n, 0.1))
    assert got["n"] == n
    assert all(math.isnan(got[key]) for key in KEYS)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        ([1.0, 2.0, 3.0], "x is too short: 3 values, need at least 4"),
        (signals()["with_nan"], "x has a NaN at position 18"),
        ([1.0, np.inf, 2.0, 3.0], "x has an infinite value at position 2"),
        ([], "x is empty"),
        ([1.0, None, 2.0, 3.0], "x has a NULL element at position 2"),
    ],
)
def test_bad_input_is_one_clear_line(x: object, message: str) -> None:
    with pytest.raises(InputError) as caught:
        tf_spectral.spectral_features(x)
    assert str(caught.value) == message


@pytest.mark.parametrize("case", CASES)
def test_sql_equals_oracle(conn: psycopg.Connection, case: str) -> None:
    x = signals()[case]
    row = conn.execute("select udf.spectral_features(%s::float8[])", (x.tolist(),)).fetchone()
    assert row is not None
    assert_features(row[0], oracle(x), len(x))


def test_sql_null_in_null_out(conn: psycopg.Connection) -> None:
    assert conn.execute("select udf.spectral_features(null)").fetchone() == (None,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("udf.spectral_features('{}'::float8[])", "udf.spectral_features: x is empty"),
        (
            "udf.spectral_features('{1,2,3}'::float8[])",
            "udf.spectral_features: x is too short: 3 values, need at least 4",
        ),
        (
            "udf.spectral_features('{1,2,NULL,4}'::float8[])",
            "udf.spectral_features: x has a NULL element at position 3",
        ),
        (
            "udf.spectral_features('{1,NaN,3,4}'::float8[])",
            "udf.spectral_features: x has a NaN at position 2",
        ),
        (
            "udf.spectral_features('{1,2,3,-Infinity}'::float8[])",
            "udf.spectral_features: x has an infinite value at position 4",
        ),
        (
            "udf.spectral_features('{{1,2},{3,4}}'::float8[])",
            "udf.spectral_features: x must be one-dimensional",
        ),
    ],
)
def test_sql_errors_are_one_clear_line(conn: psycopg.Connection, call: str, message: str) -> None:
    assert_sql_error(conn, call, message)
