"""The `spectral_bars` bar family (FEATURE_DEFINITIONS K14 with G4, G5, G6;
python_udfs/tf_bar_spectral.py) against the oracle written from K14 and the model's YAML
(tests/oracle/bar_spectral.py: numpy.fft, pywt.wavedec and np.linalg.svd on each refit window,
one window at a time): the full build on the edge-case bars of every symbol and of a second seed
and at another refit stride, incremental refreshes at cuts around refits, gaps and the flat
stretch, appends, all-zero windows. Also the many-window functions the kernel adds to
tf_spectral and tf_wavelet, against their one-window forms and the reference libraries
(tf_ssa's are in test_ssa.py).

Every value matches at 1e-9 (tests/oracle/compare.py) as it is; no row is masked.
"""

from __future__ import annotations

import re
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pywt
import tf_bar_spectral
import tf_bars
import tf_spectral
import tf_wavelet
from tf_common import InputError

from tests.kernels import bar_harness as harness
from tests.kernels.conftest import assert_close
from tests.oracle.bar_datasets import SCALES, symbol_bars
from tests.oracle.bar_spectral import spectral_bars as oracle

ROOT = Path(__file__).resolve().parents[2]
MODEL = "spectral_bars"
WARMUP = 1024  # the longest window: a refit at the first written bar reads 1024 bars before it


@cache
def _bars(symbol: str, seed: int = 7) -> pd.DataFrame:
    return symbol_bars(symbol, seed=seed)


@cache
def _oracle(symbol: str, seed: int = 7, stride: int = 60) -> pd.DataFrame:
    return oracle(_bars(symbol, seed), 1.0, refit_stride=stride)


def _refit_bars(bars: pd.DataFrame, stride: int = 60) -> np.ndarray:
    minutes = (bars["ts"] - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(minutes=1)
    return np.flatnonzero(minutes.to_numpy() % stride == stride - 1)


def _cuts(bars: pd.DataFrame) -> list[int]:
    """0, 1, n-2, n-1; at, just after and just before refit bars (the first with a full 1024
    window, one in the middle, the last); the first bar after a gap of more than 5 minutes and
    a gap holding a refit minute; inside and just after the flat stretch; WARMUP and around it."""
    n = len(bars)
    cuts = {0, 1, n // 2, n - 2, n - 1, WARMUP - 1, WARMUP, WARMUP + 1}
    refits = _refit_bars(bars)
    for r in (refits[refits >= WARMUP][:1], refits[len(refits) // 2 : len(refits) // 2 + 1],
              refits[-1:]):  # fmt: skip
        for t in r:
            cuts |= {int(t), int(t) + 1, int(t) - 1}
    minutes = bars["ts"].diff().dt.total_seconds().to_numpy() / 60
    gaps = np.flatnonzero(minutes > 5)
    cuts |= {int(g) for g in gaps[:1]} | {int(g) for g in gaps[-1:]}
    if n > 600:
        flat = harness.flat_stretch(bars)
        assert flat is not None
        cuts |= {flat + 50, flat + 119, flat + 120}
    return sorted(c for c in cuts if 0 <= c < n)


def test_model_columns_match_the_yaml_and_the_sql() -> None:
    yml = (ROOT / "models/bar_k14/spectral_bars.yml").read_text()
    names = re.findall(r"^      - name: (\w+)$", yml, flags=re.M)
    assert names[:2] == ["symbol", "ts"]
    assert names[2:] == tf_bar_spectral.MODELS[MODEL] == tf_bars.columns(MODEL)
    features = [c for c in names[2:] if not c.startswith("state_")]
    assert len(features) == len(names) - 2 >= 60
    for n in (256, 1024):
        assert sum(name.endswith(f"_n{n}") for name in features) >= 30
    assert tf_bar_spectral.WARMUP_BARS == {MODEL: WARMUP}
    sql = (ROOT / "models/bar_k14/spectral_bars.sql").read_text()
    assert re.search(rf"bar_family_model\(warmup_bars={WARMUP}\b", sql)


def test_wavelet_levels_are_the_maximum_levels() -> None:
    assert tf_bar_spectral.wavelet_level(256) == pywt.dwt_max_level(256, 8) == 5
    assert tf_bar_spectral.wavelet_level(1024) == pywt.dwt_max_level(1024, 8) == 7


@pytest.mark.parametrize("symbol", list(SCALES))
def test_full_build_equals_oracle(symbol: str) -> None:
    bars = _bars(symbol)
    harness.assert_matches(harness.full(MODEL, bars), _oracle(symbol))


def test_full_build_equals_oracle_second_seed() -> None:
    bars = _bars("EURUSD", seed=11)
    harness.assert_matches(harness.full(MODEL, bars), _oracle("EURUSD", seed=11))


def test_refit_stride_is_a_parameter() -> None:
    """refit_stride 30: refits at :29 and :59, as the oracle walks them."""
    bars = _bars("NZDUSD").iloc[:1400]
    got = harness.full(MODEL, bars, refit_stride=30)
    harness.assert_matches(got, oracle(bars, 1.0, refit_stride=30))
    assert not got.equals(harness.full(MODEL, bars))


def test_values_change_only_at_refit_bars() -> None:
    bars = _bars("EURUSD")
    got = harness.full(MODEL, bars).drop(columns=["symbol", "ts"]).to_numpy()
    filled = np.nan_to_num(got, nan=-9.0)
    changed = np.flatnonzero((filled[1:] != filled[:-1]).any(axis=1)) + 1
    refits = _refit_bars(bars)
    assert set(changed) <= set(refits)
    # the first values: the first refit with 257 closes (n = 256), then with 1025 (n = 1024)
    n256 = [c.endswith("_n256") for c in tf_bar_spectral.COLUMNS]
    first = np.flatnonzero(~np.isnan(got[:, n256]).all(axis=1))[0]
    assert first == refits[refits >= 256][0]
    n1024 = [c.endswith("_n1024") for c in tf_bar_spectral.COLUMNS]
    first = np.flatnonzero(~np.isnan(got[:, n1024]).all(axis=1))[0]
    assert first == refits[refits >= 1024][0]


@pytest.mark.parametrize("symbol", ["EURUSD", "USDJPY", "NZDUSD"])
def test_incremental_equals_full(symbol: str) -> None:
    bars = _bars(symbol)
    harness.assert_incremental_equals_full(MODEL, bars, WARMUP, _cuts(bars))


def test_incremental_with_a_short_history() -> None:
    """A cut before the symbol has 1024 bars: the kernel reads from its first bar."""
    bars = _bars("NZDUSD")
    harness.assert_incremental_equals_full(MODEL, bars, WARMUP, [300, 700, 1023])


def test_append_never_changes_the_past() -> None:
    bars = _bars("EURUSD")
    n = len(bars)
    refits = _refit_bars(bars)
    late = int(refits[refits >= 1100][0])
    harness.assert_append_never_changes_the_past(MODEL, bars, [1, 40, late, late + 1, n - 1])


def _flat_bars(flat: int) -> pd.DataFrame:
    """2600 EURUSD bars on consecutive minutes whose closes stay fixed for `flat` bars from bar
    1200 on (so their returns are exactly 0)."""
    bars = symbol_bars("EURUSD", seed=3, n=2600)
    bars["ts"] = pd.date_range("2024-03-04", periods=len(bars), freq="min", tz="UTC")
    close = bars["close"].to_numpy().copy()
    close[1200 : 1200 + flat] = close[1199]
    return bars.assign(close=close, open=close, high=close, low=close)


def test_all_zero_window_is_null() -> None:
    """A flat stretch longer than 256 bars: the 256 returns of a refit inside it are all 0,
    so every share is 0/0 and the whole n256 group is NULL, while the n1024 group (its window
    reaches the moving bars) is not; the oracle agrees."""
    bars = _flat_bars(600)
    got = harness.full(MODEL, bars)
    harness.assert_matches(got, oracle(bars, 1.0))
    refits = _refit_bars(bars)
    inside = refits[(refits >= 1200 + 256) & (refits < 1800)]
    assert len(inside) >= 4
    n256 = [c for c in tf_bar_spectral.COLUMNS if c.endswith("_n256")]
    n1024 = [c for c in tf_bar_spectral.COLUMNS if c.endswith("_n1024")]
    assert got.loc[inside, n256].isna().all().all()
    assert got.loc[inside, n1024].notna().all().all()
    # after the stretch the n256 group comes back at the first refit whose window moves
    after = int(refits[refits >= 1800][0])
    assert got.loc[after, n256].notna().all()
    # a window of zeros but for a few returns has a spectrum again
    just_before = refits[(refits >= 1200 + 200) & (refits < 1200 + 255)]
    assert got.loc[just_before, n256].notna().all().all()


def test_window_with_a_missing_close_is_null() -> None:
    """A NaN close (not in final bars) makes the windows holding its returns NULL, not an
    error, and leaves the other refits alone."""
    bars = _bars("NZDUSD")
    broken = bars.assign(close=bars["close"].where(bars.index != 1500))
    got = harness.full(MODEL, broken)
    want = harness.full(MODEL, bars)
    refits = _refit_bars(bars)
    hit = refits[(refits >= 1500) & (refits <= 1500 + 256)]
    n256 = [c for c in tf_bar_spectral.COLUMNS if c.endswith("_n256")]
    assert got.loc[hit, n256].isna().all().all()
    clear = refits[(refits > 1500 + 256) | (refits < 1500)]
    harness.assert_matches(got.loc[clear, ["symbol", "ts", *n256]],
                           want.loc[clear, ["symbol", "ts", *n256]])  # fmt: skip


@pytest.mark.parametrize(
    ("stride", "message"),
    [
        (0, "refit_stride must be a whole number of minutes >= 1, got 0"),
        (7.5, "refit_stride must be a whole number of minutes >= 1, got 7.5"),
        ("x", "refit_stride must be a whole number of minutes, got 'x'"),
    ],
)
def test_bad_refit_stride_is_one_clear_line(stride: object, message: str) -> None:
    with pytest.raises(InputError) as caught:
        harness.full(MODEL, _bars("SHORTFX"), refit_stride=stride)
    assert str(caught.value) == message


# --- the many-window functions added to tf_spectral and tf_wavelet ------------------------------


def _windows(n: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.standard_t(4, size=(count, n)) * 1e-4
    rows[1] = 0.0  # no power
    rows[2] = 3e-5  # constant
    rows[3, : n // 2] = 0.0
    return rows


@pytest.mark.parametrize("n", [7, 64, 256, 392])
def test_spectral_rows_equal_spectral_features(n: int) -> None:
    rows = _windows(n, 8, seed=n)
    got = tf_spectral.spectral_rows(rows)
    for i, row in enumerate(rows):
        want = tf_spectral.spectral_features(row)
        for key in (
            "dominant_freq",
            "dominant_period",
            "band_low_share",
            "band_mid_share",
            "band_high_share",
            "spectral_entropy",
        ):
            assert_close(got[key][i], want[key], 1e-12)
    for values in got.values():
        assert np.isnan(values[1]) and np.isnan(values[2])


def test_spectral_rows_with_the_hann_taper() -> None:
    """The Hann taper is scipy's periodic one; on a pure tone between two bins it keeps the
    power near the tone (less leakage than no taper)."""
    import scipy.signal

    n = 256
    assert_close(tf_spectral.hann(n), scipy.signal.get_window("hann", n), 1e-15)
    t = np.arange(n)
    tone = np.sin(2 * np.pi * 20.5 * t / n)[None, :]
    plain = tf_spectral.spectral_rows(tone)
    tapered = tf_spectral.spectral_rows(tone, taper="hann")
    assert tapered["dominant_freq"][0] in (20 / n, 21 / n)
    assert tapered["spectral_entropy"][0] < plain["spectral_entropy"][0]


def test_spectral_rows_bad_input_is_one_clear_line() -> None:
    with pytest.raises(InputError, match=r"^unknown taper 'hamming' \(known: none, hann\)$"):
        tf_spectral.spectral_rows(np.zeros((2, 8)), taper="hamming")
    with pytest.raises(InputError, match=r"^rows are too short: 3 values, need at least 4$"):
        tf_spectral.spectral_rows(np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"^rows has a NaN at \[1\]\[2\]$"):
        tf_spectral.spectral_rows(np.array([[0.0, np.nan, 1.0, 2.0]]))


@pytest.mark.parametrize(("n", "level"), [(256, None), (1024, None), (100, 2), (13, 0)])
def test_wavedec_rows_equal_wavedec_and_pywt(n: int, level: int | None) -> None:
    rows = _windows(n, 5, seed=n)
    got = tf_wavelet.wavedec_rows(rows, "db4", level)
    for i, row in enumerate(rows):
        one = tf_wavelet.wavedec(row, "db4", level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = pywt.wavedec(row, "db4", mode="symmetric", level=level)
        assert [a.shape[1] for a in got] == [len(b) for b in reference]
        for a, b, c in zip(got, one, reference, strict=True):
            assert np.array_equal(a[i], b)  # the same taps in the same order
            assert_close(a[i], c, 1e-12)


def test_wavedec_rows_bad_input_is_one_clear_line() -> None:
    with pytest.raises(InputError, match=r"^level must be between 0 and 5 .* got 6$"):
        tf_wavelet.wavedec_rows(np.zeros((2, 256)), "db4", 6)
    with pytest.raises(InputError, match=r"^rows must be a 2-D array, got 1 dimensions$"):
        tf_wavelet.wavedec_rows(np.zeros(256))
