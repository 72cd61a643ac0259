"""The heavy-math families on generated snapshots, against oracles built in pandas from the raw
snapshots: the 1-second bars, the trailing windows and their stamps, each family's columns, and
their carrying forward to snapshots in heavy_features.

The bars and windows are rebuilt here from market.l2_snapshots without the SQL. Each family's
columns are then recomputed from those windows: wavelet with PyWavelets itself, garch_vol
with arch's variance recursion for the fitted parameters, and hht, hmm_regime and spectral
with the python_udfs functions that tests/kernels check against PyEMD, scipy, hmmlearn and
an independent periodogram (run here in the test's Python, not the server's).
"""

from __future__ import annotations

import sys
import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
import pywt

from tests.conftest import ROOT, FreshDatabase, run_cli
from tests.oracle.compare import mismatches
from tickfeatures import generate
from tickfeatures.schema import L2_COLUMNS

sys.path.insert(0, str(ROOT / "python_udfs"))
import tf_families
import tf_spectral

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW = 256  # dbt vars heavy_window and heavy_stride_seconds, at their defaults
STRIDE = 10
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _read(url: str, query: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description or []])


@pytest.fixture(scope="module")
def built(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    url = databases.create()
    run_cli("migrate", dsn=url)
    tmp = tmp_path_factory.mktemp("heavy")
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    path = tmp / "snapshots.csv.gz"
    generate.write_csv(
        generate.generate_l2(
            [specs["EURUSD"], specs["USDJPY"]], START, timedelta(minutes=9), seed=21
        ),
        L2_COLUMNS,
        path,
    )
    run_cli("load", "l2", str(path), dsn=url)
    build = run_cli(
        "dbt",
        "build",
        "--select",
        "+heavy_features",
        "--target-path",
        str(tmp / "target"),
        dsn=url,
        check=False,
    )
    snapshots = _read(url, "select symbol, ts, bid_price_1, ask_price_1 from market.l2_snapshots")
    return {"url": url, "build": build, "snapshots": snapshots}


def _bars(snapshots: pd.DataFrame) -> pd.DataFrame:
    """1-second bars as models/heavy/mid_bars_1s.yml defines them."""
    frame = snapshots.copy()
    frame["mid"] = (frame["bid_price_1"].astype(float) + frame["ask_price_1"].astype(float)) / 2
    frame["second"] = frame["ts"].dt.floor("s")
    frame = frame.sort_values(["symbol", "ts"])
    counts = frame.groupby(["symbol", "second"]).size().rename("snapshots")
    closes = frame.dropna(subset=["mid"]).groupby(["symbol", "second"])["mid"].last()
    bars = pd.concat([closes.rename("close"), counts], axis=1, join="inner").reset_index()
    bars["ts"] = bars.pop("second") + pd.Timedelta(seconds=1)
    return bars[["symbol", "ts", "close", "snapshots"]].sort_values(["symbol", "ts"])


def _windows(bars: pd.DataFrame) -> list[tuple[str, pd.Timestamp, np.ndarray, float]]:
    """(symbol, stamp, closes, span_seconds) for every bar ending on a multiple of STRIDE
    seconds with WINDOW bars up to it."""
    out = []
    for symbol, group in bars.groupby("symbol"):
        ts = group["ts"].reset_index(drop=True)
        close = group["close"].to_numpy()
        for i in range(WINDOW - 1, len(group)):
            stamp = ts[i]
            if int(stamp.timestamp()) % STRIDE == 0:
                first = ts[i - WINDOW + 1]
                span = (stamp - first).total_seconds() + 1
                out.append((symbol, stamp, close[i - WINDOW + 1 : i + 1], span))
    return out


@pytest.fixture(scope="module")
def windows(built: dict) -> list[tuple[str, pd.Timestamp, np.ndarray, float]]:
    found = _windows(_bars(built["snapshots"]))
    assert len(found) >= 40, "the test data should give dozens of windows"
    return found


def _actual(built: dict, model: str, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = _read(built["url"], f"select * from features.{model}").drop(columns=list(drop))
    for column in frame.columns:
        if column not in ("symbol", "ts"):
            frame[column] = frame[column].astype("float64")
    return frame


def _expected(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column not in ("symbol", "ts"):
            frame[column] = frame[column].astype("float64")
    return frame


def test_build_and_data_tests_pass(built: dict) -> None:
    build = built["build"]
    assert build.returncode == 0, build.stdout[-4000:]
    assert "ERROR=0" in build.stdout


def test_bars_equal_their_oracle(built: dict) -> None:
    expected = _bars(built["snapshots"])
    expected["snapshots"] = expected["snapshots"].astype("float64")
    actual = _actual(built, "mid_bars_1s")
    assert len(actual) > 900
    assert not (problems := mismatches(actual, expected.reset_index(drop=True))), problems


def test_hht_equals_its_oracle(built: dict, windows: list) -> None:
    names = {
        "hht_trend_strength": "trend_strength",
        "hht_trend_slope": "trend_slope",
        "hht_cycle_phase": "cycle_phase",
        "hht_dominant_freq": "dominant_freq",
        "hht_inst_amplitude": "inst_amplitude",
        "hht_energy_high_freq": "energy_high_freq",
        "hht_energy_mid_freq": "energy_mid_freq",
        "hht_energy_residual": "energy_residual",
        "hht_data_quality": "data_quality",
        "hht_trend_confidence": "trend_confidence",
        "trend_persistence_hht": "trend_persistence",
        "mean_reversion_hht": "mean_reversion",
        "hht_imf_count": "imf_count",
        "hht_regime_classifier": "regime_classifier",
        "hht_market_state": "market_state",
    }
    rows = []
    for symbol, stamp, closes, span in windows:
        f = tf_families.hht_features(closes.tolist(), span)
        rows.append({"symbol": symbol, "ts": stamp} | {c: f[k] for c, k in names.items()})
    actual = _actual(built, "hht", drop=("hht_calculation_time_ms",))
    expected = _expected(rows)[list(actual.columns)]
    assert not (problems := mismatches(actual, expected)), "\n".join(problems)
    times = _read(built["url"], "select hht_calculation_time_ms from features.hht")
    assert (times["hht_calculation_time_ms"] > 0).all()


def test_hmm_regime_equals_its_oracle(built: dict, windows: list) -> None:
    rows = []
    for symbol, stamp, closes, _ in windows:
        f = tf_families.hmm_regime_features(closes.tolist(), 3, 10, 0)
        row = {"symbol": symbol, "ts": stamp, "hmm_state": f["state"]}
        row |= {f"hmm_prob_state_{k}": f["probabilities"][k] for k in range(3)}
        row["hmm_state_duration"] = f["duration"]
        row |= {f"hmm_mean_state_{k}": f["means"][k] for k in range(3)}
        row |= {f"hmm_variance_state_{k}": f["variances"][k] for k in range(3)}
        row["hmm_loglik"] = f["loglik"]
        rows.append(row)
    actual = _actual(built, "hmm_regime")
    # EM over 10 iterations repeats the server's numpy to about 1e-12; 1e-8 as the issue's
    # HMM tolerance
    assert not (problems := mismatches(actual, _expected(rows), rel=1e-8)), "\n".join(problems)


def test_wavelet_equals_pywavelets(built: dict, windows: list) -> None:
    rows = []
    for symbol, stamp, closes, _ in windows:
        returns = 1e4 * np.diff(np.log(closes))
        energy = [float(np.sum(c * c)) for c in pywt.wavedec(returns, "db4", level=4)]
        total = sum(energy)
        row = {"symbol": symbol, "ts": stamp, "wavelet_energy_a4": energy[0] / total}
        row |= {f"wavelet_energy_d{4 - i}": energy[1 + i] / total for i in range(4)}
        row["wavelet_detail_approx_ratio"] = sum(energy[1:]) / energy[0]
        rows.append(row)
    actual = _actual(built, "wavelet")
    assert not (problems := mismatches(actual, _expected(rows))), "\n".join(problems)


def test_spectral_equals_its_oracle(built: dict, windows: list) -> None:
    rows = []
    for symbol, stamp, closes, _ in windows:
        f = tf_spectral.spectral_features((1e4 * np.diff(np.log(closes))).tolist())
        rows.append(
            {"symbol": symbol, "ts": stamp}
            | {
                "spectral_dominant_freq": f["dominant_freq"],
                "spectral_dominant_period": f["dominant_period"],
                "spectral_band_low_share": f["band_low_share"],
                "spectral_band_mid_share": f["band_mid_share"],
                "spectral_band_high_share": f["band_high_share"],
                "spectral_entropy": f["spectral_entropy"],
            }
        )
    actual = _actual(built, "spectral")
    assert not (problems := mismatches(actual, _expected(rows))), "\n".join(problems)


def test_garch_vol_is_archs_forecast_for_the_fitted_parameters(built: dict, windows: list) -> None:
    from arch import arch_model

    actual = _read(built["url"], "select * from features.garch order by symbol, ts")
    assert len(actual) == len(windows)
    for (symbol, stamp, closes, _), row in zip(
        sorted(windows, key=lambda w: (w[0], w[1])), actual.itertuples(), strict=True
    ):
        assert (row.symbol, row.ts) == (symbol, stamp)
        y = 100 * np.diff(np.log(closes))
        params = [100 * row.garch_mu, row.garch_omega, row.garch_alpha, row.garch_beta]
        with warnings.catch_warnings():
            # arch warns that 1-second returns in percent are small (DataScaleWarning); the
            # engine's convention is to fit them as they are
            warnings.simplefilter("ignore")
            fixed = arch_model(y).fix(params)
        sigma2 = np.asarray(fixed.conditional_volatility) ** 2
        forecast = params[1] + params[2] * (y[-1] - params[0]) ** 2 + params[3] * sigma2[-1]
        assert row.garch_vol == pytest.approx(np.sqrt(forecast) / 100, rel=1e-9)
        assert row.garch_loglik == pytest.approx(fixed.loglikelihood, rel=1e-9)
        assert row.garch_persistence == pytest.approx(row.garch_alpha + row.garch_beta, rel=1e-12)
        # the fit ran on s y with the standard deviation of s y in [1, 10)
        assert 1 <= np.std(row.garch_scale * y, ddof=1) < 10


def test_heavy_features_carry_the_newest_finished_window(built: dict) -> None:
    url = built["url"]
    frame = _read(
        url,
        "select symbol, ts, hht_window_end, hht_market_state, garch_window_end, garch_vol,"
        " ofi_10s, ofi_10s_hht_qualified, order_book_imbalance_5, obi_trend_aligned,"
        " l2_hht_signal_confluence from features.heavy_features order by symbol, ts",
    )
    snapshots = _read(url, "select symbol, ts from market.l2_snapshots order by ts")
    assert len(frame) == len(snapshots)
    for family, column in (("hht", "hht_market_state"), ("garch", "garch_vol")):
        stamped = _read(url, f"select symbol, ts as stamp, {column} from features.{family}")
        expected = pd.merge_asof(
            snapshots.sort_values("ts"),
            stamped.sort_values("stamp"),
            left_on="ts",
            right_on="stamp",
            by="symbol",
            direction="backward",
            allow_exact_matches=True,
        ).sort_values(["symbol", "ts"])
        got = pd.to_datetime(frame[f"{family}_window_end"], utc=True).reset_index(drop=True)
        want = pd.to_datetime(expected["stamp"], utc=True).reset_index(drop=True)
        assert got.isna().equals(want.isna())
        assert (got[got.notna()] == want[want.notna()]).all()
        assert np.allclose(
            frame[column].astype(float), expected[column].astype(float), equal_nan=True
        )
    state = frame["hht_market_state"].astype(float)
    ofi = frame["ofi_10s"].astype(float)
    obi = frame["order_book_imbalance_5"].astype(float)
    qualified = np.where((state != 0) & (np.sign(ofi) == state), ofi, 0.0)
    qualified[np.isnan(state) | np.isnan(ofi)] = np.nan
    assert np.allclose(frame["ofi_10s_hht_qualified"].astype(float), qualified, equal_nan=True)
    aligned = np.where((state != 0) & (np.sign(obi) == state), 1.0, 0.0)
    aligned[np.isnan(state) | np.isnan(obi)] = np.nan
    assert np.allclose(frame["obi_trend_aligned"].astype(float), aligned, equal_nan=True)
    confluence = (np.sign(ofi) + np.sign(obi) + state) / 3
    assert np.allclose(frame["l2_hht_signal_confluence"].astype(float), confluence, equal_nan=True)
    # the first 256 seconds of each symbol have no finished window yet
    assert frame["hht_window_end"].isna().any() and frame["hht_window_end"].notna().any()
