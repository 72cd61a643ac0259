"""Benchmark: the heavy-math kernels through SQL against their reference libraries, and the hht
family built for one symbol-day of 1-second bars.

Kernels: the same trailing windows (256 one-second closes of a random walk with cycles, in
basis points) go through each udf.* function in one query, computed in the database (the
query returns one number per window, so the timing is the kernel's and not the transfer of
its output), and through the reference library in this process: PyEMD, scipy.signal.hilbert,
PyWavelets, hmmlearn, arch and statsmodels. Both sides are warmed up first (imports, the
module load of a database session). SSA and the spectral features have no reference library:
their ratio is against the same python_udfs function run here.

hht build: 86,400 snapshots, one per second of a day for one symbol, loaded; mid_bars_1s built
(untimed); then `dbt run --select hht --full-refresh` timed (8,640 windows at the default
stride of 10 s). Also the one-minute incremental refresh of all heavy families.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "python_udfs"))

from bench.bench_l2 import fresh_database, log, settle, tf  # noqa: E402
from tickfeatures import config, generate  # noqa: E402
from tickfeatures.schema import L2_COLUMNS  # noqa: E402

WINDOW = 256


def windows(count: int, seed: int = 7) -> list[np.ndarray]:
    """Trailing windows of 1-second closes in bp: a random walk with two cycles, every 10 s."""
    rng = np.random.default_rng(seed)
    n = WINDOW + 10 * count
    t = np.arange(n)
    walk = np.cumsum(rng.normal(scale=0.4, size=n))
    path = walk + 1.5 * np.sin(2 * np.pi * t / 45) + 0.8 * np.sin(2 * np.pi * t / 9)
    return [path[10 * i : 10 * i + WINDOW] - path[10 * i] for i in range(count)]


def timed(run: Callable[[], object], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def kernel_figures(url: str, count: int) -> dict[str, dict[str, float]]:
    import pywt
    import scipy.signal
    import tf_spectral
    import tf_ssa
    from arch import arch_model
    from hmmlearn.hmm import GaussianHMM
    from PyEMD import EMD
    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    xs = windows(count)
    returns = [np.diff(x) for x in xs]
    rng = np.random.default_rng(3)
    panels = []
    for x in xs:
        partner = 0.5 * x + np.cumsum(rng.normal(scale=0.2, size=x.size))
        panels.append(np.column_stack([x, partner]))
    hmm = GaussianHMM(n_components=3, covariance_type="diag", random_state=0).fit(
        returns[0].reshape(-1, 1)
    )
    params = {
        "startprob": hmm.startprob_.tolist(),
        "transmat": hmm.transmat_.tolist(),
        "means": hmm.means_[:, 0].tolist(),
        "variances": hmm.covars_[:, 0, 0].tolist(),
    }
    garch_params = {"mu": 0.0, "omega": 0.05, "alpha": 0.1, "beta": 0.85}

    def reference_hilbert(x: np.ndarray) -> object:
        z = scipy.signal.hilbert(x)
        phase = np.unwrap(np.angle(z))
        return np.abs(z), phase, np.diff(phase) / (2 * np.pi)

    def quiet(run: Callable[[], object]) -> Callable[[], object]:
        def call() -> object:
            with warnings.catch_warnings():
                # arch's DataScaleWarning/ConvergenceWarning and hmmlearn's convergence
                # messages: the timing is what is measured here
                warnings.simplefilter("ignore")
                return run()

        return call

    def hmm_model() -> GaussianHMM:
        model = GaussianHMM(n_components=3, covariance_type="diag", init_params="")
        model.startprob_ = np.array(params["startprob"])
        model.transmat_ = np.array(params["transmat"])
        model.means_ = np.array(params["means"]).reshape(-1, 1)
        model.covars_ = np.array(params["variances"]).reshape(-1, 1)
        return model

    ref_hmm = hmm_model()
    cases: dict[str, tuple[str, str, Callable[[], object]]] = {
        "emd": ("x", "cardinality(udf.emd(x))", lambda: [EMD()(x) for x in xs]),
        "analytic_signal": (
            "x",
            "(select cardinality(a.amplitude) from udf.analytic_signal(x) as a)",
            lambda: [reference_hilbert(x) for x in xs],
        ),
        "wavedec": (
            "x",
            "(select count(*) from udf.wavedec(x))",
            lambda: [pywt.wavedec(x, "db4") for x in xs],
        ),
        "hmm_posteriors": (
            "r",
            f"cardinality(udf.hmm_posteriors(x, '{json.dumps(params)}'))",
            lambda: [ref_hmm.predict_proba(r.reshape(-1, 1)) for r in returns],
        ),
        "hmm_viterbi": (
            "r",
            f"cardinality(udf.hmm_viterbi(x, '{json.dumps(params)}'))",
            lambda: [ref_hmm.decode(r.reshape(-1, 1), algorithm="viterbi") for r in returns],
        ),
        "hmm_fit": (
            "r",
            "length(udf.hmm_fit(x, 3, 10, 0)::text)",
            quiet(
                lambda: [
                    GaussianHMM(n_components=3, covariance_type="diag", random_state=0).fit(
                        r.reshape(-1, 1)
                    )
                    for r in returns
                ]
            ),
        ),
        "garch11_fit": (
            "r",
            "length(udf.garch11_fit(x)::text)",
            quiet(lambda: [arch_model(r).fit(disp="off") for r in returns]),
        ),
        "garch11_variance": (
            "r",
            f"cardinality(udf.garch11_variance(x, '{json.dumps(garch_params)}'))",
            quiet(lambda: [arch_model(r).fix(list(garch_params.values())) for r in returns]),
        ),
        "johansen": (
            "panel",
            "length(udf.johansen(x, 0, 1)::text)",
            lambda: [coint_johansen(p, 0, 1) for p in panels],
        ),
        "ssa (vs the same function here)": (
            "x",
            "cardinality(udf.ssa(x, 128, 3))",
            lambda: [tf_ssa.ssa(x, 128, 3) for x in xs],
        ),
        "spectral_features (vs the same function here)": (
            "r",
            "length(udf.spectral_features(x)::text)",
            lambda: [tf_spectral.spectral_features(r) for r in returns],
        ),
    }
    figures: dict[str, dict[str, float]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create temporary table bench_x (i int, x float8[])")
        conn.execute("create temporary table bench_r (i int, x float8[])")
        conn.execute("create temporary table bench_panel (i int, x float8[])")
        with conn.cursor() as cur:
            cur.executemany(
                "insert into bench_x values (%s, %s)", [(i, x.tolist()) for i, x in enumerate(xs)]
            )
            cur.executemany(
                "insert into bench_r values (%s, %s)",
                [(i, r.tolist()) for i, r in enumerate(returns)],
            )
            cur.executemany(
                "insert into bench_panel values (%s, %s)",
                [(i, p.tolist()) for i, p in enumerate(panels)],
            )
        for name, (table, expression, reference) in cases.items():
            query = f"select sum({expression}) from bench_{table}"
            warm_up = f"select sum({expression}) from (select * from bench_{table} limit 1) as w"
            conn.execute(warm_up)  # the session loads the kernel modules
            reference()  # warm-up: imports, first-call caches
            in_sql = timed(lambda q=query: conn.execute(q).fetchone(), repeat=2)
            in_python = timed(reference, repeat=2)
            figures[name] = {
                "windows": count,
                "sql_s": round(in_sql, 4),
                "reference_s": round(in_python, 4),
                "ratio_sql_to_reference": round(in_sql / in_python, 3),
            }
            log(
                f"{name}: SQL {1e3 * in_sql / count:.2f} ms/window, reference "
                f"{1e3 * in_python / count:.2f} ms/window, ratio {in_sql / in_python:.2f}"
            )
    return figures


def day_of_snapshots(path: Path, day: datetime, symbol: str = "EURUSD") -> Path:
    """One snapshot per second of a day (at .5 s), a 10-level book around a random walk."""
    rng = np.random.default_rng(11)
    seconds = 86_400
    mid = 1.1 * np.exp(np.cumsum(rng.normal(scale=2e-5, size=seconds)))
    columns = list(L2_COLUMNS)
    half_spread = 0.00005
    rows = []
    for s in range(seconds):
        ts = day + timedelta(seconds=s, milliseconds=500)
        row: dict[str, object] = {"symbol": symbol, "ts": ts.isoformat()}
        for level in range(1, 11):
            row[f"bid_price_{level}"] = round(mid[s] - half_spread - 1e-5 * (level - 1), 6)
            row[f"ask_price_{level}"] = round(mid[s] + half_spread + 1e-5 * (level - 1), 6)
            row[f"bid_size_{level}"] = float(rng.integers(1, 50))
            row[f"ask_size_{level}"] = float(rng.integers(1, 50))
        rows.append(tuple(row.get(c) for c in columns))
    generate.write_csv(iter(rows), L2_COLUMNS, path)
    return path


def hht_day(base: str, cache: Path) -> dict[str, float]:
    url = fresh_database(base, "tickfeatures_bench_heavy")
    tf("migrate", dsn=url)
    day = datetime(2026, 3, 3, tzinfo=UTC)
    path = cache / "heavy_day.csv.gz"
    if not path.exists():
        log("generating one day of 1-second snapshots ...")
        cache.mkdir(parents=True, exist_ok=True)
        day_of_snapshots(path, day)
    tf("load", "l2", str(path), dsn=url)
    tf("dbt", "seed", dsn=url)
    tf("dbt", "run", "--select", "mid_bars_1s", dsn=url)
    settle(url)
    log("hht for one symbol-day of 1-second bars (dbt run --select hht --full-refresh) ...")
    started = time.perf_counter()
    tf("dbt", "run", "--select", "hht", "--full-refresh", dsn=url)
    hht_s = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        windows_built, kernel_ms = conn.execute(
            "select count(*), sum(hht_calculation_time_ms) from features.hht"
        ).fetchone()  # type: ignore[misc]
    log(f"hht: {windows_built} windows in {hht_s:.1f} s")
    log("the other heavy families on the same day (untimed), then one new minute ...")
    tf("dbt", "run", "--select", "path:models/heavy", "ofi", "microstructure", dsn=url)
    settle(url)
    minute = cache / "heavy_next_minute.csv"
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    generate.write_csv(
        generate.generate_l2([specs["EURUSD"]], day + timedelta(days=1), timedelta(minutes=1), 5),
        L2_COLUMNS,
        minute,
    )
    tf("load", "l2", str(minute), dsn=url)
    started = time.perf_counter()
    tf("refresh", "--select", "path:models/heavy", dsn=url)
    refresh_s = time.perf_counter() - started
    log(f"heavy families' refresh of one new minute: {refresh_s:.1f} s")
    return {
        "hht_full_build_one_symbol_day_s": round(hht_s, 2),
        "hht_windows": int(windows_built),
        "hht_ms_per_window_wall": round(1e3 * hht_s / windows_built, 2),
        "hht_ms_per_window_in_kernel": round(float(kernel_ms) / windows_built, 2),
        "heavy_refresh_one_minute_s": round(refresh_s, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=60, help="windows per kernel")
    parser.add_argument("--skip-day", action="store_true", help="kernels only")
    parser.add_argument("--out", default=str(ROOT / ".tickfeatures" / "bench" / "heavy.json"))
    args = parser.parse_args()
    base = os.environ.get(config.DSN_ENV) or config.embedded_url(database="postgres")
    cache = ROOT / ".tickfeatures" / "bench"
    url = fresh_database(base, "tickfeatures_bench_kernels")
    tf("migrate", dsn=url)
    figures: dict[str, object] = {
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "kernels": kernel_figures(url, args.windows),
    }
    if not args.skip_day:
        figures["hht_day"] = hht_day(base, cache)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    log(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
