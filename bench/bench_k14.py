"""Benchmark: the K14 bar families (FEATURE_DEFINITIONS K14: correlation, cross_sectional,
error_correction, hmm_regime_bars, spectral_bars, volatility_surface) built in the database
against Python workers computing the same columns with the reference libraries.

On 28 FX pairs x about 31,000 one-minute bars (bench_bars' database, tickfeatures_bench_bars),
in one run on one machine:
  * in-database, per family: `dbt run --select <model> --full-refresh --threads 1` through
    `tickfeatures dbt` (dbt's start-up and parse included), with the SQL time dbt reports
    (run_results.json) and the model's own refresh log (ops.refresh_runs); the full build
    runs its shards' kernels in parallel workers (dbt var bar_family_shards, 4; the server's
    max_parallel_workers_per_gather, 2), the session's backend writing the rows;
  * a Python worker per family, timed end to end: COPY the staged bars out
    (staging.stg_bars_1m), compute the family's columns with the reference libraries over
    the same windows and refits in two worker processes (one per core, a process pool over
    the symbols; cross_sectional over two spans of minutes), each worker single-threaded
    (BLAS threads 1), then binary COPY the columns into bench_worker.<model> (the model
    table's columns and types, two connections) and build its unique (symbol, ts) index:
      - correlation: pandas Series.rolling(N).corr per pair, the peers' series reindexed
        onto the symbol's bar times, a window where either series is flat (rolling max ==
        min) NULL;
      - cross_sectional: tests/oracle/bar_panel.py (pandas groupby('ts') rank / mean / std /
        count and the currency strengths as a groupby mean), over two spans of minutes;
      - error_correction: statsmodels coint_johansen(window, 0, 1) per refit window and
        reference symbol, the ECT statistics and the AR(1) half-life vectorised across the
        windows, the carried values and the per-bar ECT vectorised;
      - hmm_regime_bars: hmmlearn GaussianHMM(3, 'diag', n_iter 10, tol 1e-2).fit per refit
        window from G3's engine initialisation (tf_hmm.initial_params: hmmlearn's own would
        run scikit-learn's KMeans), states sorted by mean, the window's filtered
        probabilities from hmmlearn's forward pass (_hmmc.forward_log), then the forward
        recursion bar by bar with numpy, all the stretches between refits of a symbol at once;
      - spectral_bars: np.fft.rfft, pywt.wavedec(..., 'db4', axis=1) and np.linalg.svd
        (singular values only) of the SSA trajectory matrices, every refit window of a
        symbol in one stacked call each;
      - volatility_surface: the K7 realized volatilities with pandas rolling sums and
        variances, the term structure vectorised, arch_model(window).fit() per refit window,
        the variance recursion continued bar by bar with numpy across the stretches;
    and the worker's values are compared with the model's table on one symbol;
  * the whole bar catalogue (K1-K14): `dbt run --select path:models/bar path:models/bar_k14
    --full-refresh --threads 2`, against the 600 s the issue allows.
Each timed step also records how many cores the whole machine kept busy (/proc/stat): up to 2
for both (the in-database build less while one shard is left or the rows are written). --merge
updates only the families (and catalogue) run in an existing JSON, so a disturbed step can be
re-run alone. --symbols/--days build a smaller database of their own
(tickfeatures_bench_k14_<symbols>x<days>d) for a quick run.
Prints the figures and writes them to a JSON file (.tickfeatures/bench/k14.json).
"""

from __future__ import annotations

import os

# one thread per worker process (two processes on two cores): numpy's BLAS and LAPACK
# (np.linalg.svd, the Johansen eigenproblem) would otherwise start a thread per core in each
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import bench_bars  # noqa: E402  (puts the project root and python_udfs on sys.path)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psycopg  # noqa: E402
import yaml  # noqa: E402
from benchlib import ROOT, fresh_database, log, settle, tf  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from tickfeatures import config, generate, pgcopy  # noqa: E402
from tickfeatures.db import redact  # noqa: E402
from tickfeatures.schema import BAR_COLUMNS  # noqa: E402

FAMILIES: tuple[str, ...] = (
    "correlation",
    "cross_sectional",
    "error_correction",
    "hmm_regime_bars",
    "spectral_bars",
    "volatility_surface",
)
FULL_SYMBOLS, FULL_DAYS = bench_bars.PAIRS, 30
FULL_DATABASE = "tickfeatures_bench_bars"
CATALOGUE_LIMIT_S = 600.0
WORKER_SCHEMA = "bench_worker"
# the agreement check: |worker - model| <= RTOL * max(|worker|, |model|) + ATOL
RTOL, ATOL = 1e-4, 1e-9
BP = 1e4
LOG_2PI = math.log(2.0 * math.pi)


def dbt_vars() -> dict:
    """The dbt vars of dbt_project.yml (the bench passes no --vars)."""
    return yaml.safe_load((ROOT / "dbt_project.yml").read_text()).get("vars", {})


def reference_symbols(variables: dict) -> list[str]:
    value = variables.get("reference_symbols", ["EURUSD", "GBPUSD", "USDJPY"])
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip() for v in value]


# -- the database ----------------------------------------------------------------------------


def bars_csv(cache: Path, symbols: int, days: int) -> Path:
    """bench_bars' bars (its file for 28 pairs), or the first `symbols` pairs the same way."""
    if symbols == bench_bars.PAIRS:
        return bench_bars.bars_csv(cache, days)
    path = cache / f"bars_{symbols}x{days}d.csv"
    if not path.exists():
        specs = generate.fx_pairs(symbols, generate.load_symbols(ROOT / "seeds" / "symbols.csv"))
        log(f"generating {symbols} pairs x {days} days of one-minute bars into {path}")
        start = bench_bars.START
        generate.write_csv(
            generate.generate_bars(specs, start, start + timedelta(days=days), seed=2026),
            BAR_COLUMNS,
            path,
        )
    return path


def _database_holds(url: str, symbols: int) -> int | None:
    """The number of loaded bars if the database exists with `symbols` symbols, else None."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            n_bars, n_symbols = conn.execute(
                "select count(*), count(distinct symbol) from market.bars_1m"
            ).fetchone()  # type: ignore[misc]
    except psycopg.Error:
        return None
    return n_bars if n_symbols == symbols and n_bars > 0 else None


def _seed(url: str) -> None:
    """dbt seed; a full refresh of the seeds when reference.symbols lacks a column of the
    CSV (an older database: K14 reads base_ccy, quote_ccy)."""
    header = (ROOT / "seeds" / "symbols.csv").read_text().splitlines()[0].split(",")
    with psycopg.connect(url, autocommit=True) as conn:
        have = {
            row[0]
            for row in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'reference' and table_name = 'symbols'"
            )
        }
    if have and set(header) <= have:
        tf("dbt", "seed", dsn=url)
    else:
        log("seeds: reference.symbols lacks columns of seeds/symbols.csv: dbt seed --full-refresh")
        tf("dbt", "seed", "--full-refresh", dsn=url)


def prepare_database(args: argparse.Namespace, cache: Path) -> str:
    base = os.environ.get(config.DSN_ENV) or config.embedded_url(database="postgres")
    full = (args.symbols, args.days) == (FULL_SYMBOLS, FULL_DAYS)
    name = FULL_DATABASE if full else f"tickfeatures_bench_k14_{args.symbols}x{args.days}d"
    url = make_conninfo(base, dbname=name)
    held = _database_holds(url, args.symbols) if args.reuse else None
    if held is None:
        path = bars_csv(cache, args.symbols, args.days)
        url = fresh_database(base, name)
        log(f"database {redact(url)} (new)")
        tf("migrate", dsn=url)
        started = time.perf_counter()
        tf("load", "bars", str(path), dsn=url)
        log(f"bars loaded in {time.perf_counter() - started:.1f} s")
    else:
        log(f"database {redact(url)} (reused: {held:,} bars of {args.symbols} symbols)")
        tf("migrate", dsn=url)  # the newest kernels and functions
    _seed(url)
    started = time.perf_counter()
    tf("dbt", "run", "--select", "+bars_30m", "+bars_60m", dsn=url)
    log(f"staged and coarser bars up to date in {time.perf_counter() - started:.1f} s")
    return url


# -- timing ------------------------------------------------------------------------------------


def cpu_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all processes, every core; /proc/stat),
    to tell how many cores a timed step kept busy: up to 2 for an in-database build (its
    parallel workers) and for the workers; more means something else ran at the same time."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return math.nan
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def busy_cores(busy_before: float, wall_s: float) -> float | None:
    value = (cpu_busy_s() - busy_before) / wall_s if wall_s > 0 else math.nan
    return None if math.isnan(value) else round(value, 2)


# -- dbt ---------------------------------------------------------------------------------------


@dataclass
class DbtRun:
    wall_s: float
    ok: bool
    error: str
    execution_s: dict[str, float]  # per model, from run_results.json
    refresh_s: dict[str, float]  # per model, ops.refresh_runs duration_ms of this run
    busy_cores: float | None  # the machine's busy cores on average over the run


def _dbt_error(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    picked = [line for line in lines if "rror" in line or "ailed" in line]
    return " | ".join((picked or lines)[-6:])[:1500]


def dbt_run(url: str, select: list[str], threads: int, target: Path) -> DbtRun:
    """`tickfeatures dbt run --select ... --full-refresh`, timed (wall, dbt included)."""
    args = ["dbt", "run", "--select", *select, "--full-refresh", "--threads", str(threads)]
    args += ["--target-path", str(target)]
    results = target / "run_results.json"
    results.unlink(missing_ok=True)
    with psycopg.connect(url, autocommit=True) as conn:
        since = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    busy = cpu_busy_s()
    started = time.perf_counter()
    ok, error = True, ""
    try:
        tf(*args, dsn=url)
    except SystemExit as exc:
        ok, error = False, _dbt_error(str(exc))
    wall = time.perf_counter() - started
    cores = busy_cores(busy, wall)
    execution: dict[str, float] = {}
    if results.exists():
        for result in json.loads(results.read_text()).get("results", []):
            model = result["unique_id"].split(".")[-1]
            execution[model] = round(float(result.get("execution_time") or 0.0), 2)
            if result.get("status") not in ("success", None):
                ok = False
    with psycopg.connect(url) as conn:
        refresh = {
            model: round(ms / 1000, 2)
            for model, ms in conn.execute(
                "select distinct on (model) model, duration_ms from ops.refresh_runs"
                " where started_at >= %s and mode = 'full' and status = 'success'"
                " order by model, run_id desc",
                [since],
            )
        }
    return DbtRun(wall, ok, error, execution, refresh, cores)


# -- what every worker shares ------------------------------------------------------------------


def _minutes(ts: pd.Series) -> np.ndarray:
    """Bar open times as whole minutes since the epoch (UTC)."""
    return (
        ts.dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .to_numpy()
        .astype("datetime64[m]")
        .astype(np.int64)
    )


def _log_return(close: np.ndarray, k: int = 1) -> np.ndarray:
    """ln(C_t / C_(t-k)) written ln(1 + (C_t - C_(t-k))/C_(t-k)), NaN for the first k bars."""
    out = np.full(len(close), np.nan)
    if len(close) > k:
        out[k:] = np.log1p((close[k:] - close[:-k]) / close[:-k])
    return out


def _bqx(close: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(close), np.nan)
    if len(close) > n:
        out[n:] = 100.0 * (close[n:] - close[:-n]) / close[:-n]
    return out


def _refit_bars(minute: np.ndarray, stride: int, first: int) -> np.ndarray:
    """Bars whose open minute is :59 (stride 60) and at index >= first."""
    return np.flatnonzero((minute % stride == stride - 1) & (np.arange(len(minute)) >= first))


def _stretches(refits: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each refit's stretch: its bar and the number of bars up to the next refit."""
    ends = np.append(refits[1:], n)
    return refits, ends - refits


def _carry(table: np.ndarray, refits: np.ndarray, n: int) -> np.ndarray:
    """Per-refit values (refits x ...) carried from each refit bar to the bar before the
    next; NaN before the first refit."""
    which = np.full(n, -1)
    which[refits] = np.arange(len(refits))
    which = np.maximum.accumulate(which)
    out = np.full((n, *table.shape[1:]), np.nan)
    has = which >= 0
    out[has] = table[which[has]]
    return out


# per-process state set by the pool initializer: every symbol's (minute, close), the
# currencies, the dbt vars
_SHARED: dict = {}


def _init_worker(shared: dict) -> None:
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    _SHARED.clear()
    _SHARED.update(shared)


def _timed(function: Callable, job: tuple) -> tuple[dict[str, np.ndarray], float]:
    started = time.process_time()
    result = function(job)
    return result, time.process_time() - started


# -- correlation -------------------------------------------------------------------------------

OWN_WINDOWS = (60, 240, 1440)
BQX_WINDOWS = (15, 30, 45, 60, 75)
BQX_PAIRS = ((15, 30), (15, 60), (15, 75), (30, 60), (30, 75), (60, 75))
REF_RET_WINDOWS = (15, 30, 60, 240, 1440)
REF_BQX15_WINDOWS = (60, 240, 1440)
REF_BQX60_WINDOWS = (240, 1440)
GROUP_WINDOWS = (60, 240, 1440)


def _peer_groups(symbol: str, loaded: list[str], currencies: dict) -> dict[str, list]:
    """bar_peer_map's currency slots: (peer, sign) for the base and quote groups, in the
    model's order (slot, then peer name)."""
    base, quote = currencies.get(symbol, (None, None))
    others = [s for s in sorted(loaded) if s != symbol]

    def holding(side: int, code: str | None) -> list[str]:
        return [s for s in others if code and currencies.get(s, (None, None))[side] == code]

    return {
        "base": [(s, 1.0) for s in holding(0, base)] + [(s, -1.0) for s in holding(1, base)],
        "quote": [(s, 1.0) for s in holding(1, quote)] + [(s, -1.0) for s in holding(0, quote)],
    }


def _correlation(job: tuple) -> dict[str, np.ndarray]:
    symbol, minute, inputs = job
    universe = _SHARED["universe"]
    close = inputs["close"]
    n = len(close)
    index = pd.Index(minute)
    own = {"ret": _log_return(close), **{f"bqx{q}": _bqx(close, q) for q in BQX_WINDOWS}}
    series: dict[str, pd.Series] = {k: pd.Series(v, index=index) for k, v in own.items()}

    def peer(name: str) -> dict[str, str]:
        """The peer's ret, bqx15 and bqx60 on its own bars, read at the symbol's minutes."""
        if f"{name}.ret" not in series:
            m, c = universe[name]
            frame = pd.DataFrame(
                {"ret": _log_return(c), "bqx15": _bqx(c, 15), "bqx60": _bqx(c, 60)}, index=m
            ).reindex(index)
            for k in frame:
                series[f"{name}.{k}"] = frame[k]
        return {k: f"{name}.{k}" for k in ("ret", "bqx15", "bqx60")}

    flat: dict[tuple[str, int], np.ndarray] = {}

    def corr(a: str, b: str, w: int) -> np.ndarray:
        x, y = series[a], series[b]
        got = x.rolling(w).corr(y).to_numpy(float, copy=True)
        for key in ((a, w), (b, w)):
            if key not in flat:
                s = series[key[0]].rolling(w)
                flat[key] = (s.max() == s.min()).to_numpy()
        got[flat[(a, w)] | flat[(b, w)] | ~np.isfinite(got)] = np.nan
        return got

    out: dict[str, np.ndarray] = {}
    for a, b in BQX_PAIRS:
        for w in OWN_WINDOWS:
            out[f"corr_bqx{a}_bqx{b}_w{w}"] = corr(f"bqx{a}", f"bqx{b}", w)
    for q in BQX_WINDOWS:
        for w in OWN_WINDOWS:
            out[f"corr_ret_bqx{q}_w{w}"] = corr("ret", f"bqx{q}", w)
    loaded = list(universe)
    for j, ref in enumerate(_SHARED["references"][:3], start=1):
        present = ref in universe and ref != symbol
        cols = peer(ref) if present else None
        for kind, windows, mine in (
            ("ret", REF_RET_WINDOWS, "ret"),
            ("bqx15", REF_BQX15_WINDOWS, "bqx15"),
            ("bqx60", REF_BQX60_WINDOWS, "bqx60"),
        ):
            for w in windows:
                out[f"corr_{kind}_ref{j}_w{w}"] = (
                    corr(mine, cols[kind], w) if cols else np.full(n, np.nan)
                )
    for group, members in _peer_groups(symbol, loaded, _SHARED["currencies"]).items():
        for w in GROUP_WINDOWS:
            rets, bqxs = [], []
            for name, sign in members:
                cols = peer(name)
                rets.append(sign * corr("ret", cols["ret"], w))
                bqxs.append(sign * corr("bqx15", cols["bqx15"], w))
            r = pd.DataFrame(np.column_stack(rets)) if rets else pd.DataFrame(index=range(n))
            b = pd.DataFrame(np.column_stack(bqxs)) if bqxs else pd.DataFrame(index=range(n))
            out[f"corr_ret_{group}_mean_w{w}"] = r.mean(axis=1).to_numpy(float)
            out[f"corr_ret_{group}_min_w{w}"] = r.min(axis=1).to_numpy(float)
            out[f"corr_ret_{group}_max_w{w}"] = r.max(axis=1).to_numpy(float)
            out[f"corr_ret_{group}_count_w{w}"] = r.notna().sum(axis=1).to_numpy(float)
            out[f"corr_bqx15_{group}_mean_w{w}"] = b.mean(axis=1).to_numpy(float)
    out["state_corr_bar_index"] = np.arange(n, dtype=float)
    return out


# -- error_correction --------------------------------------------------------------------------

EC_CARRIED = (
    "rank",
    "trace_r0",
    "maxeig_r0",
    "trace_r1",
    "eig1",
    "eig2",
    "hedge_ratio",
    "ect_mean",
    "ect_std",
    "half_life",
)


def _error_correction(job: tuple) -> dict[str, np.ndarray]:
    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    symbol, minute, inputs = job
    universe = _SHARED["universe"]
    window, stride = _SHARED["window"], _SHARED["stride"]
    level = np.log(inputs["close"])
    n = len(level)
    refits = _refit_bars(minute, stride, 0)
    out: dict[str, np.ndarray] = {}
    for j, ref in enumerate(_SHARED["references"][:2], start=1):
        cols = {k: np.full(n, np.nan) for k in (*EC_CARRIED, "ect", "ect_z")}
        if ref in universe and ref != symbol:
            peer_minute, peer_close = universe[ref]
            peer_level = np.log(peer_close)
            common, mine, theirs = np.intersect1d(
                minute, peer_minute, assume_unique=True, return_indices=True
            )
            both = np.column_stack([level[mine], peer_level[theirs]])
            ends = np.searchsorted(common, minute[refits], side="right")
            table = np.full((len(refits), len(EC_CARRIED)), np.nan)
            fitted = np.flatnonzero(ends >= window)
            if len(fitted):
                panels = np.stack([both[e - window : e] for e in ends[fitted]])
                stats = np.empty((len(fitted), 8))
                for i, panel in enumerate(panels):
                    res = coint_johansen(panel, 0, 1)
                    rank = 2.0
                    for r in range(2):
                        if res.lr1[r] < res.cvt[r, 1]:
                            rank = float(r)
                            break
                    stats[i] = (
                        rank, res.lr1[0], res.lr2[0], res.lr1[1], res.eig[0], res.eig[1],
                        res.evec[1, 0] / res.evec[0, 0], 0.0,
                    )  # fmt: skip
                beta2 = stats[:, 6]
                e = panels[:, :, 0] + beta2[:, None] * panels[:, :, 1]
                mean = e.mean(axis=1)
                std = e.std(axis=1, ddof=1)
                x = e[:, :-1] - e[:, :-1].mean(axis=1, keepdims=True)
                y = e[:, 1:] - e[:, 1:].mean(axis=1, keepdims=True)
                with np.errstate(divide="ignore", invalid="ignore"):
                    phi = (x * y).sum(axis=1) / (x * x).sum(axis=1)
                    half_life = np.where(
                        (phi > 0) & (phi < 1), -math.log(2.0) / np.log(phi), np.nan
                    )
                table[fitted] = np.column_stack([stats[:, :6], -beta2, mean, std, half_life])
            carried = _carry(table, refits, n)
            for k, name in enumerate(EC_CARRIED):
                cols[name] = carried[:, k]
            where = np.searchsorted(peer_minute, minute)
            inside = np.minimum(where, len(peer_minute) - 1)
            peer_now = np.where(peer_minute[inside] == minute, peer_level[inside], np.nan)
            ect = level - cols["hedge_ratio"] * peer_now - cols["ect_mean"]
            cols["ect"] = ect
            with np.errstate(divide="ignore", invalid="ignore"):
                cols["ect_z"] = np.where(cols["ect_std"] > 0, ect / cols["ect_std"], np.nan)
        for name, values in cols.items():
            out[f"ec_ref{j}_{name}"] = values
    return out


# -- hmm_regime_bars ---------------------------------------------------------------------------

HMM_K = 3


def _hmm_window(x: np.ndarray, n_iter: int) -> dict | None:
    """hmmlearn's fit of one window from G3's engine initialisation, states by ascending
    mean, and its forward lattice's filtered probabilities."""
    import tf_hmm
    from hmmlearn import _hmmc
    from hmmlearn.hmm import GaussianHMM
    from scipy.special import logsumexp

    start = tf_hmm.initial_params(x, HMM_K, 0)
    model = GaussianHMM(
        n_components=HMM_K, covariance_type="diag", n_iter=n_iter, init_params="", params="stmc"
    )
    model.startprob_ = np.array(start["startprob"])
    model.transmat_ = np.array(start["transmat"])
    model.means_ = np.array(start["means"])[:, None]
    model.covars_ = np.array(start["variances"])[:, None]
    try:
        model.fit(x[:, None])
    except ValueError:
        return None
    order = np.argsort(model.means_[:, 0], kind="stable")
    startprob = model.startprob_[order]
    trans = model.transmat_[np.ix_(order, order)]
    means = model.means_[order, 0]
    var = model.covars_[order, 0, 0]
    logb = -0.5 * (LOG_2PI + np.log(var)[None] + (x[:, None] - means[None]) ** 2 / var[None])
    loglik, lattice = _hmmc.forward_log(startprob, trans, logb)
    filtered = np.exp(lattice[-2:] - logsumexp(lattice[-2:], axis=1, keepdims=True))
    path = lattice.argmax(axis=1)
    changed = np.flatnonzero(path != path[-1])
    history = list(model.monitor_.history)
    return {
        "trans": trans,
        "means": means,
        "var": var,
        "last": filtered[-1],
        "before_last": filtered[-2],
        "run": float(len(path) - 1 - (changed[-1] if len(changed) else -1)),
        "loglik": float(loglik),
        "n_iter": float(model.monitor_.iter),
        "converged": float(len(history) >= 2 and history[-1] - history[-2] < model.tol),
    }


def _hmm_step(
    alpha: np.ndarray, trans: np.ndarray, means: np.ndarray, var: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One forward step for many stretches (rows) in logs: the new filtered probabilities
    and ln p(y_t | the past)."""
    pred = np.einsum("si,sij->sj", alpha, trans)
    log_joint = np.log(pred) - 0.5 * (LOG_2PI + np.log(var) + (y[:, None] - means) ** 2 / var)
    top = log_joint.max(axis=1)
    joint = np.exp(log_joint - top[:, None])
    total = joint.sum(axis=1)
    return joint / total[:, None], top + np.log(total)


def _hmm_regime_bars(job: tuple) -> dict[str, np.ndarray]:
    _symbol, minute, inputs = job
    window, stride, n_iter = _SHARED["window"], _SHARED["stride"], _SHARED["hmm_n_iter"]
    close = inputs["close"]
    n = len(close)
    y = BP * _log_return(close)
    refits = _refit_bars(minute, stride, window)
    r_len = len(refits)
    k = HMM_K
    means = np.full((r_len, k), np.nan)
    var = np.full((r_len, k), np.nan)
    trans = np.full((r_len, k, k), np.nan)
    last = np.full((r_len, k), np.nan)
    before = np.full((r_len, k), np.nan)
    scalar = {c: np.full(r_len, np.nan) for c in ("run", "loglik", "n_iter", "converged")}
    for j, r in enumerate(refits):
        fit = _hmm_window(y[r - window + 1 : r + 1], n_iter)
        if fit is None:
            continue
        means[j], var[j], trans[j] = fit["means"], fit["var"], fit["trans"]
        last[j], before[j] = fit["last"], fit["before_last"]
        for c in scalar:
            scalar[c][j] = fit[c]

    probs = np.full((n, k), np.nan)
    loglik_bar = np.full(n, np.nan)
    state = np.full(n, np.nan)
    duration = np.full(n, np.nan)
    ok = np.flatnonzero(np.isfinite(last).all(axis=1))
    bars = refits[ok]
    probs[bars] = last[ok]
    state[bars] = last[ok].argmax(axis=1)
    duration[bars] = scalar["run"][ok]
    loglik_bar[bars] = _hmm_step(before[ok], trans[ok], means[ok], var[ok], y[bars])[1]
    # the bars after each refit up to the next (a failed refit ends its predecessor's
    # stretch too): the forward recursion, every stretch of the symbol at once
    first, length = (a[ok] for a in _stretches(refits, n))
    alpha = last[ok].copy()
    current = state[bars].copy()
    count = duration[bars].copy()
    for step in range(1, int(length.max()) if len(length) else 0):
        live = np.flatnonzero(length > step)
        t = first[live] + step
        j = ok[live]
        alpha[live], loglik_bar[t] = _hmm_step(alpha[live], trans[j], means[j], var[j], y[t])
        new = alpha[live].argmax(axis=1).astype(float)
        count[live] = np.where(new == current[live], count[live] + 1.0, 1.0)
        current[live] = new
        probs[t], state[t], duration[t] = alpha[live], new, count[live]

    out: dict[str, np.ndarray] = {}
    mu, v, a = _carry(means, refits, n), _carry(var, refits, n), _carry(trans, refits, n)
    out["hmm1m_state"] = state
    for i in range(k):
        out[f"hmm1m_prob_{i}"] = probs[:, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["hmm1m_entropy"] = -np.where(probs > 0, probs * np.log(probs), 0.0).sum(axis=1)
    out["hmm1m_entropy"][np.isnan(probs).any(axis=1)] = np.nan
    out["hmm1m_duration"] = duration
    out["hmm1m_stay_prob"] = (probs * np.diagonal(a, axis1=1, axis2=2)).sum(axis=1)
    q = np.einsum("ti,tij->tj", probs, a)
    pred_mean = (q * mu).sum(axis=1)
    out["hmm1m_pred_mean"] = pred_mean
    out["hmm1m_pred_vol"] = np.sqrt((q * (v + (mu - pred_mean[:, None]) ** 2)).sum(axis=1))
    which = np.where(np.isfinite(state), state, 0).astype(np.int64)[:, None]
    z = (y - np.take_along_axis(mu, which, 1)[:, 0]) / np.sqrt(
        np.take_along_axis(v, which, 1)[:, 0]
    )
    out["hmm1m_return_z"] = np.where(np.isfinite(state), z, np.nan)
    out["hmm1m_loglik_bar"] = loglik_bar
    since = np.full(n, np.nan)
    ran = np.isfinite(scalar["n_iter"])
    for r, length_r, did in zip(refits, _stretches(refits, n)[1], ran, strict=True):
        if did:
            since[r : r + length_r] = np.arange(length_r)
    out["hmm1m_bars_since_refit"] = since
    diagonal = np.diagonal(trans, axis1=1, axis2=2)
    with np.errstate(divide="ignore"):
        exp_duration = np.where(diagonal < 1.0, 1.0 / (1.0 - diagonal), np.nan)
    carried = {
        **{f"hmm1m_mean_{i}": means[:, i] for i in range(k)},
        **{f"hmm1m_vol_{i}": np.sqrt(var[:, i]) for i in range(k)},
        **{f"hmm1m_trans_{i}{m}": trans[:, i, m] for i in range(k) for m in range(k)},
        **{f"hmm1m_exp_duration_{i}": exp_duration[:, i] for i in range(k)},
        "hmm1m_loglik_per_obs": scalar["loglik"] / window,
        "hmm1m_n_iter": scalar["n_iter"],
        "hmm1m_converged": scalar["converged"],
        **{f"state_hmm1m_var_{i}": var[:, i] for i in range(k)},
    }
    for c, table in carried.items():
        out[c] = _carry(table, refits, n)
    return out


# -- volatility_surface ------------------------------------------------------------------------

TERM_WINDOWS = (15, 30, 60, 120, 240, 1440)
ESTIMATORS = ("close", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang")
HORIZONS = (1, 5, 15, 60, 240)


def _realized_volatility(inputs: dict[str, np.ndarray]) -> dict[tuple[str, int], np.ndarray]:
    """K7's per-bar volatilities by (estimator, window) with pandas rolling sums and
    variances (close-to-close divided by sqrt(N), as the term structure reads it)."""
    o, h, lo, c = (inputs[k] for k in ("open", "high", "low", "close"))
    prev = np.concatenate([[np.nan], c[:-1]])

    def ln(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.log1p((a - b) / b)

    r, hl, co, oj = ln(c, prev), ln(h, lo), ln(c, o), ln(o, prev)
    u, d = ln(h, o), ln(lo, o)
    rs = u * (u - co) + d * (d - co)
    terms = pd.DataFrame(
        {
            "r2": r * r,
            "hl2": hl * hl,
            "gk": 0.5 * hl * hl - (2 * math.log(2) - 1) * co * co,
            "rs": rs,
            "rs_yz": np.where(np.isnan(oj), np.nan, rs),
            "oj": oj,
            "co_yz": np.where(np.isnan(oj), np.nan, co),
        }
    )
    out: dict[tuple[str, int], np.ndarray] = {}
    for n in TERM_WINDOWS:
        rolling = terms.rolling(n)
        s = rolling.sum().clip(lower=0.0)
        var = terms[["oj", "co_yz"]].rolling(n).var(ddof=1).clip(lower=0.0)
        kk = 0.34 / (1.34 + (n + 1) / (n - 1))
        out[("close", n)] = np.sqrt(s["r2"].to_numpy()) / math.sqrt(n)
        out[("parkinson", n)] = np.sqrt(s["hl2"].to_numpy() / (4 * n * math.log(2)))
        out[("garman_klass", n)] = np.sqrt(s["gk"].to_numpy() / n)
        out[("rogers_satchell", n)] = np.sqrt(s["rs"].to_numpy() / n)
        yz = var["oj"] + kk * var["co_yz"] + (1 - kk) * rolling.sum()["rs_yz"] / n
        out[("yang_zhang", n)] = np.sqrt(yz.clip(lower=0.0).to_numpy())
    return out


def _garch_window(x: np.ndarray) -> dict | None:
    """arch_model(x).fit(); None where the window cannot be fitted (all returns equal) or
    SLSQP does not converge (status != 0)."""
    from arch import arch_model

    if np.ptp(x) == 0:
        return None
    result = arch_model(x).fit(disp="off")
    if result.optimization_result.status != 0:
        return None
    mu, omega, alpha, beta = (float(v) for v in result.params)
    return {
        "params": (mu, omega, alpha, beta),
        "last": float(np.asarray(result.conditional_volatility)[-1] ** 2),
        "loglik": float(result.loglikelihood),
    }


def _volatility_surface(job: tuple) -> dict[str, np.ndarray]:
    _symbol, minute, inputs = job
    window, stride = _SHARED["window"], _SHARED["stride"]
    n = len(inputs["close"])
    sigma = _realized_volatility(inputs)
    out: dict[str, np.ndarray] = {}
    x = np.log(np.array(TERM_WINDOWS, dtype=float))
    xc = x - x.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        for e in ESTIMATORS:
            logs = np.column_stack(
                [np.where(sigma[(e, w)] > 0, np.log(sigma[(e, w)]), np.nan) for w in TERM_WINDOWS]
            )
            out[f"vs_slope_{e}"] = logs @ xc / float(xc @ xc)
            for lo, hi in ((15, 1440), (60, 1440)):
                out[f"vs_ratio_{e}_w{lo}_w{hi}"] = sigma[(e, lo)] / np.where(
                    sigma[(e, hi)] > 0, sigma[(e, hi)], np.nan
                )
            if e in ("close", "yang_zhang"):
                for lo, hi in itertools.pairwise(TERM_WINDOWS):
                    out[f"vs_ratio_{e}_w{lo}_w{hi}"] = sigma[(e, lo)] / np.where(
                        sigma[(e, hi)] > 0, sigma[(e, hi)], np.nan
                    )

    y = BP * _log_return(inputs["close"])
    refits = _refit_bars(minute, stride, window)
    names = (
        "vs_garch_mu", "vs_garch_omega", "vs_garch_alpha", "vs_garch_beta",
        "vs_garch_persistence", "vs_garch_half_life", "vs_garch_long_run_vol",
        "vs_garch_sigma_last", *(f"vs_garch_fc_h{h}" for h in HORIZONS),
        "vs_garch_loglik_per_obs", "vs_garch_converged",
    )  # fmt: skip
    table = np.full((len(refits), len(names)), np.nan)
    following = np.full(len(refits), np.nan)  # sigma^2 of the bar after the refit bar
    last = np.full(len(refits), np.nan)
    for j, r in enumerate(refits):
        fit = _garch_window(y[r - window + 1 : r + 1])
        column = dict.fromkeys(names, math.nan)
        column["vs_garch_converged"] = 0.0 if fit is None else 1.0
        if fit is not None:
            mu, omega, alpha, beta = fit["params"]
            p = alpha + beta
            eps = y[r] - mu
            nxt = omega + alpha * eps * eps + beta * fit["last"]
            following[j], last[j] = nxt, fit["last"]
            column.update(
                vs_garch_mu=mu, vs_garch_omega=omega, vs_garch_alpha=alpha, vs_garch_beta=beta,
                vs_garch_persistence=p,
                vs_garch_half_life=math.log(0.5) / math.log(p) if 0 < p < 1 else math.nan,
                vs_garch_long_run_vol=math.sqrt(omega / (1 - p)) if p < 1 else math.nan,
                vs_garch_sigma_last=math.sqrt(fit["last"]),
                vs_garch_loglik_per_obs=fit["loglik"] / window,
            )  # fmt: skip
            for h in HORIZONS:
                if p < 1:  # K14: sigma-bar^2 + p^(h-1) (sigma^2_(T+1) - sigma-bar^2)
                    long_run = omega / (1 - p)
                    value = long_run + p ** (h - 1) * (nxt - long_run)
                else:  # no long-run variance: the recursion itself
                    value = nxt
                    for _ in range(h - 1):
                        value = omega + p * value
                column[f"vs_garch_fc_h{h}"] = math.sqrt(value)
        table[j] = [column[c] for c in names]
    carried = _carry(table, refits, n)
    for k, c in enumerate(names):
        out[c] = carried[:, k]
    live = np.full(n, np.nan)
    resid = np.full(n, np.nan)
    since = np.full(n, np.nan)
    first, length = _stretches(refits, n)
    for r, length_r in zip(first, length, strict=True):
        since[r : r + length_r] = np.arange(length_r)
    ok = np.flatnonzero(np.isfinite(following))
    mu, omega, alpha, beta = (table[ok, k] for k in range(4))
    bars = refits[ok]
    live[bars] = following[ok]
    resid[bars] = (y[bars] - mu) / np.sqrt(last[ok])
    s2 = following[ok].copy()
    first, length = first[ok], length[ok]
    for step in range(1, int(length.max()) if len(length) else 0):
        run = np.flatnonzero(length > step)
        t = first[run] + step
        eps = y[t] - mu[run]
        resid[t] = eps / np.sqrt(s2[run])
        s2[run] = omega[run] + alpha[run] * eps * eps + beta[run] * s2[run]
        live[t] = s2[run]
    out["vs_garch_bars_since_refit"] = since
    out["vs_garch_sigma_live"] = np.sqrt(live)
    out["vs_garch_std_resid"] = resid
    with np.errstate(divide="ignore", invalid="ignore"):
        for w in (60, 1440):
            realized = BP * sigma[("close", w)]
            out[f"vs_garch_vol_ratio_w{w}"] = np.where(
                realized > 0, np.sqrt(live) / realized, np.nan
            )
    out["state_vs_garch_var"] = live
    return out


# -- spectral_bars -----------------------------------------------------------------------------


SPECTRAL_WINDOWS = (256, 1024)
SPECTRAL_BATCH = 64  # windows per stacked SVD: 64 trajectory matrices of 512 x 513, 135 MB


def _spectrum(x: np.ndarray, taper: bool) -> dict[str, np.ndarray]:
    """G6 on every row of x (windows x n): numpy.fft.rfft of the demeaned (optionally Hann
    tapered, scipy's get_window) rows; NaN where a row is flat (no power off DC)."""
    import scipy.signal

    rows, n = x.shape
    y = x - x.mean(axis=1, keepdims=True)
    if taper:
        y = y * scipy.signal.get_window("hann", n)[None]
    power = np.abs(np.fft.rfft(y, axis=1)[:, 1:]) ** 2
    k = np.arange(1, power.shape[1] + 1)
    f = np.fft.rfftfreq(n, d=1.0)[1:]
    total = power.sum(axis=1)
    best = power.argmax(axis=1)
    p = power / total[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / math.log(len(k))
        geometric = np.exp(np.log(power).mean(axis=1))
        centroid = p @ f
        out = {
            "dom_freq": f[best],
            "dom_period": 1.0 / f[best],
            "dom_share": power[np.arange(rows), best] / total,
            "band_low_share": power[:, 32 * k < n].sum(axis=1) / total,
            "band_mid_share": power[:, (32 * k >= n) & (8 * k < n)].sum(axis=1) / total,
            "band_high_share": power[:, 8 * k >= n].sum(axis=1) / total,
            "entropy": entropy,
            "flatness": np.where((power > 0).all(axis=1), geometric, 0.0) / (total / len(k)),
            "centroid": centroid,
            "spread": np.sqrt((((f[None] - centroid[:, None]) ** 2) * p).sum(axis=1)),
        }
    dead = (x.max(axis=1) == x.min(axis=1)) | (total == 0)
    for v in out.values():
        v[dead] = np.nan
    return out


def _wavelet(x: np.ndarray) -> dict[str, np.ndarray]:
    """G4 on every row: pywt.wavedec(x, 'db4', axis=1) at dwt_max_level, energy shares, the
    detail / approximation ratio, the entropy of the shares and the scaling slope."""
    import pywt

    level = pywt.dwt_max_level(x.shape[1], pywt.Wavelet("db4").dec_len)
    coeffs = pywt.wavedec(x, "db4", mode="symmetric", level=level, axis=1)
    energy = np.column_stack([(c * c).sum(axis=1) for c in coeffs])
    total = energy.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        share = energy / total[:, None]
        names = [f"energy_a{level}", *(f"energy_d{j}" for j in range(level, 0, -1))]
        for j, name in enumerate(names):
            out[name] = np.where(total > 0, share[:, j], np.nan)
        out["detail_approx_ratio"] = np.where(
            (total > 0) & (energy[:, 0] > 0), energy[:, 1:].sum(axis=1) / energy[:, 0], np.nan
        )
        entropy = -np.where(share > 0, share * np.log(share), 0.0).sum(axis=1)
        out["entropy"] = np.where(total > 0, entropy / math.log(level + 1), np.nan)
        means = np.column_stack([energy[:, -j] / coeffs[-j].shape[1] for j in range(1, level + 1)])
        j = np.arange(1, level + 1) - (level + 1) / 2.0
        logs = np.log2(means)
        slope = (logs - logs.mean(axis=1, keepdims=True)) @ j / (j @ j)
        out["scaling_slope"] = np.where((means > 0).all(axis=1), slope, np.nan)
    return out


def _ssa(x: np.ndarray) -> dict[str, np.ndarray]:
    """G5 with L = n // 2 on every row: np.linalg.svd (singular values only) of the
    trajectory matrices, SPECTRAL_BATCH windows per stacked call."""
    n = x.shape[1]
    window = n // 2
    s2 = np.empty((len(x), 3))
    total = np.empty(len(x))
    for a in range(0, len(x), SPECTRAL_BATCH):
        traj = np.lib.stride_tricks.sliding_window_view(
            x[a : a + SPECTRAL_BATCH], n - window + 1, axis=1
        )
        s = np.linalg.svd(traj[:, :window], compute_uv=False)
        energy = s * s
        s2[a : a + SPECTRAL_BATCH] = energy[:, :3]
        total[a : a + SPECTRAL_BATCH] = energy.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(total[:, None] > 0, s2 / total[:, None], np.nan)
    return {
        "share0": shares[:, 0],
        "share1": shares[:, 1],
        "share2": shares[:, 2],
        "osc_share": shares[:, 1] + shares[:, 2],
        "noise_share": np.maximum(1.0 - shares.sum(axis=1), 0.0),
    }


def _spectral_bars(job: tuple) -> dict[str, np.ndarray]:
    _symbol, minute, inputs = job
    stride = _SHARED["stride"]
    r = _log_return(inputs["close"])
    m = len(r)
    refits = _refit_bars(minute, stride, 0)
    out: dict[str, np.ndarray] = {}
    hann_keys = ("dom_freq", "dom_period", "band_low_share", "band_mid_share")
    hann_keys += ("band_high_share", "entropy")
    for n in SPECTRAL_WINDOWS:
        enough = np.flatnonzero(refits >= n)
        x = r[refits[enough][:, None] + np.arange(1 - n, 1)[None, :]]
        finite = np.isfinite(x).all(axis=1)
        enough, x = enough[finite], x[finite]
        values: dict[str, np.ndarray] = {}
        for key, v in _spectrum(x, taper=False).items():
            values[f"spec_{key}_n{n}"] = v
        hann = _spectrum(x, taper=True)
        for key in hann_keys:
            values[f"spec_hann_{key}_n{n}"] = hann[key]
        for key, v in _wavelet(x).items():
            values[f"wav_{key}_n{n}"] = v
        for key, v in _ssa(x).items():
            values[f"ssa_{key}_n{n}"] = v
        names = list(values)
        table = np.full((len(refits), len(names)), np.nan)
        table[enough] = np.column_stack([values[c] for c in names])
        carried = _carry(table, refits, m)
        for k, c in enumerate(names):
            out[c] = carried[:, k]
    return out


# -- cross_sectional ---------------------------------------------------------------------------

PANEL_WARMUP_BARS = 241  # rvol_240: the 240 returns ending at the bar, 241 closes


def _cross_sectional(job: tuple) -> pd.DataFrame:
    """tests/oracle/bar_panel.py on one span of minutes (its bars from PANEL_WARMUP_BARS of
    each symbol's bars before the span on): the rows of the span."""
    from tests.oracle import bar_panel

    bars, from_minute = job
    frame = bar_panel.cross_sectional(bars, _SHARED["currencies"])
    return frame[_minutes(frame["ts"]) >= from_minute]


# -- the workers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    inputs: tuple[str, ...]  # staged bar columns read
    compute: Callable[[tuple], dict[str, np.ndarray]]
    universe: bool = False  # needs every symbol's closes


WORKERS: dict[str, Family] = {
    "correlation": Family(("close",), _correlation, universe=True),
    "error_correction": Family(("close",), _error_correction, universe=True),
    "hmm_regime_bars": Family(("close",), _hmm_regime_bars),
    "spectral_bars": Family(("close",), _spectral_bars),
    "volatility_surface": Family(("open", "high", "low", "close"), _volatility_surface),
    "cross_sectional": Family(("close", "volume"), _cross_sectional),  # type: ignore[arg-type]
}


def table_columns(url: str, model: str) -> list[tuple[str, str]]:
    """The model table's columns after (symbol, ts), with their types; the kernel's columns
    as double precision when the table does not exist (its build failed)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'features' and table_name = %s order by ordinal_position",
            [model],
        ).fetchall()
    if rows:
        return [(c, t) for c, t in rows if c not in ("symbol", "ts")]
    import tf_bars

    return [(c, "double precision") for c in tf_bars.columns(model)]


KINDS = {"double precision": ("f8", 8), "integer": ("i4", 4), "bigint": ("i8", 8)}


def encode_typed(
    codes: np.ndarray,
    symbols: list[bytes],
    ts_us: np.ndarray,
    values: np.ndarray,
    types: list[str],
    rows: np.ndarray,
) -> list[memoryview]:
    """Rows (symbol text, ts timestamptz, values...) as binary COPY data for columns of the
    given SQL types: pgcopy.encode_rows when every column is float8 or int4 (the loader's
    encoder), else the same layout-group encoding with int8 and boolean fields too."""
    nulls = np.isnan(values)
    if set(types) <= {"double precision", "integer"}:
        integers = np.array([t == "integer" for t in types])
        return pgcopy.encode_rows(
            codes, symbols, ts_us, values, nulls, rows=rows, integers=integers
        )
    bits = np.packbits(nulls[rows], axis=1, bitorder="little")
    key = np.concatenate([bits, codes[rows].astype("<u8").reshape(-1, 1).view(np.uint8)], axis=1)
    key = np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1]))).ravel()
    _, inverse = np.unique(key, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    groups = np.split(rows[order], np.flatnonzero(np.diff(inverse[order])) + 1)
    out = []
    for group in groups:
        text = symbols[int(codes[group[0]])]
        null = nulls[group[0]]
        layout = [("count", ">i2"), ("slen", ">i4"), ("sym", f"S{len(text)}"), ("tlen", ">i4")]
        layout.append(("ts", ">i8"))
        for j, t in enumerate(types):
            layout.append((f"l{j}", ">i4"))
            if not null[j]:
                kind = "u1" if t == "boolean" else ">" + KINDS[t][0]
                layout.append((f"v{j}", kind))
        block = np.empty(len(group), dtype=np.dtype(layout))
        block["count"], block["slen"], block["sym"], block["tlen"] = (
            len(types) + 2,
            len(text),
            text,
            8,
        )
        block["ts"] = ts_us[group] - pgcopy.PG_EPOCH_US
        for j, t in enumerate(types):
            if null[j]:
                block[f"l{j}"] = -1
                continue
            block[f"l{j}"] = 1 if t == "boolean" else KINDS[t][1]
            v = values[group, j]
            block[f"v{j}"] = (v != 0) if t == "boolean" else v
        out.append(memoryview(block).cast("B"))
    return out


def write_table(
    url: str,
    model: str,
    columns: list[tuple[str, str]],
    matrix: np.ndarray,
    codes: np.ndarray,
    symbols: list[bytes],
    ts_us: np.ndarray,
    streams: int,
) -> None:
    """bench_worker.<model> (the model table's columns and types) by binary COPY on
    `streams` connections (the symbols split between them), then its unique index."""
    table = sql.Identifier(WORKER_SCHEMA, model)
    types = [t for _, t in columns]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop table if exists {}").format(table))
        conn.execute(
            sql.SQL("create table {} (symbol text not null, ts timestamptz not null, {})").format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns
                ),
            )
        )
    bounds = np.searchsorted(codes, np.linspace(0, len(symbols), streams + 1).round())

    def copy(part: int) -> None:
        lo, hi = int(bounds[part]), int(bounds[part + 1])
        with psycopg.connect(url) as conn:
            with (
                conn.cursor() as cur,
                cur.copy(sql.SQL("copy {} from stdin (format binary)").format(table)) as out,
            ):
                out.write(pgcopy.HEADER)
                for start in range(lo, hi, 100_000):
                    rows = np.arange(start, min(start + 100_000, hi))
                    for block in encode_typed(codes, symbols, ts_us, matrix, types, rows):
                        out.write(block)
                out.write(pgcopy.TRAILER)

    with ThreadPoolExecutor(max_workers=streams) as pool:
        list(pool.map(copy, range(streams)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("create unique index on {} (symbol, ts)").format(table))


def run_worker(url: str, model: str, threads: int, variables: dict) -> dict:
    """One family's worker, timed: read (COPY out), compute (the process pool), write
    (binary COPY in and the index)."""
    family = WORKERS[model]
    columns = table_columns(url, model)
    busy = cpu_busy_s()
    started = time.perf_counter()
    first = started
    with psycopg.connect(url) as conn:
        bars = bench_bars.copy_out(
            conn, f"select symbol, ts, {', '.join(family.inputs)} from staging.stg_bars_1m"
        )
        currencies = {
            s: (b or None, q or None)
            for s, b, q in conn.execute("select symbol, base_ccy, quote_ccy from reference.symbols")
        }
    read_s = time.perf_counter() - started

    started = time.perf_counter()
    bars = bars.sort_values(["symbol", "ts"], ignore_index=True)
    symbol = bars["symbol"].to_numpy()
    starts = np.flatnonzero(np.r_[True, symbol[1:] != symbol[:-1]])
    names = [str(s) for s in symbol[starts]]
    bounds = np.r_[starts, len(bars)]
    minute = _minutes(bars["ts"])
    spans = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
    shared: dict = {
        "currencies": currencies,
        "references": reference_symbols(variables),
        "window": int(variables.get("bar_heavy_window", 1440)),
        "stride": int(variables.get("bar_heavy_stride", 60)),
        "hmm_n_iter": int(variables.get("hmm_n_iter", 10)),
    }
    close = bars["close"].to_numpy(np.float64)
    if family.universe:
        shared["universe"] = {
            s: (minute[a:b], close[a:b]) for s, (a, b) in zip(names, spans, strict=True)
        }
    cpu = 0.0
    with ProcessPoolExecutor(
        max_workers=threads, initializer=_init_worker, initargs=(shared,)
    ) as pool:
        if model == "cross_sectional":
            grid = np.unique(minute)
            cuts = [
                grid[0],
                *(grid[len(grid) * i // threads] for i in range(1, threads)),
                grid[-1] + 1,
            ]
            jobs = []
            for lo, hi in itertools.pairwise(cuts):
                take = []
                for a, b in spans:
                    i0 = a + int(np.searchsorted(minute[a:b], lo))
                    i1 = a + int(np.searchsorted(minute[a:b], hi))
                    take.append(np.arange(max(a, i0 - PANEL_WARMUP_BARS), i1))
                jobs.append((bars.iloc[np.concatenate(take)].reset_index(drop=True), int(lo)))
            frames = []
            for frame, seconds in pool.map(_timed, [family.compute] * len(jobs), jobs):
                frames.append(frame)
                cpu += seconds
            result = pd.concat(frames, ignore_index=True).sort_values(
                ["symbol", "ts"], ignore_index=True
            )
            got = {
                c: result[c].to_numpy(np.float64)
                for c in result.columns
                if c not in ("symbol", "ts")
            }
            if (
                len(result) != len(bars)
                or not (result["symbol"].to_numpy() == bars["symbol"].to_numpy()).all()
            ):
                raise SystemExit("cross_sectional worker: rows do not match the bars")
            per_symbol = None
        else:
            jobs = [
                (s, minute[a:b], {k: bars[k].to_numpy(np.float64)[a:b] for k in family.inputs})
                for s, (a, b) in zip(names, spans, strict=True)
            ]
            per_symbol = []
            for values, seconds in pool.map(_timed, [family.compute] * len(jobs), jobs):
                per_symbol.append(values)
                cpu += seconds
            got = None
    missing = [c for c, _ in columns if (got if got is not None else per_symbol[0]).get(c) is None]
    matrix = np.full((len(bars), len(columns)), np.nan)
    for j, (c, _) in enumerate(columns):
        if c in missing:
            continue
        if got is not None:
            matrix[:, j] = got[c]
        else:
            matrix[:, j] = np.concatenate([v[c] for v in per_symbol])
    matrix[~np.isfinite(matrix)] = np.nan
    compute_s = time.perf_counter() - started

    started = time.perf_counter()
    codes = np.repeat(np.arange(len(names)), [b - a for a, b in spans])
    ts_us = (
        bars["ts"]
        .dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .to_numpy()
        .astype("datetime64[us]")
        .astype(np.int64)
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create schema if not exists {}").format(sql.Identifier(WORKER_SCHEMA))
        )
    write_table(url, model, columns, matrix, codes, [s.encode() for s in names], ts_us, threads)
    write_s = time.perf_counter() - started
    cores = busy_cores(busy, time.perf_counter() - first)
    return {
        "read_s": round(read_s, 2),
        "compute_s": round(compute_s, 2),
        "write_s": round(write_s, 2),
        "total_s": round(read_s + compute_s + write_s, 2),
        "compute_cpu_s": round(cpu, 2),
        "busy_cores": cores,
        "rows": len(bars),
        "columns": len(columns),
        "columns_not_computed": missing,
    }


# -- agreement ---------------------------------------------------------------------------------


def _numbers(column: pd.Series) -> np.ndarray:
    """A column read from CSV as float64 (booleans 't'/'f' as 1/0, NULL as NaN)."""
    if column.dtype == object or column.dtype == "string":
        column = column.map({"t": 1.0, "f": 0.0, True: 1.0, False: 0.0})
    return pd.to_numeric(column, errors="coerce").to_numpy(np.float64)


def agreement(url: str, model: str, symbol: str) -> dict:
    """The worker's table against the model's on one symbol: per column, the cells where
    both are non-NULL and agree to RTOL/ATOL, and the cells NULL in one only."""
    with psycopg.connect(url) as conn:
        query = "select * from {}.{} where symbol = '{}' order by ts"
        try:
            mine = bench_bars.copy_out(conn, query.format(WORKER_SCHEMA, model, symbol))
            theirs = bench_bars.copy_out(conn, query.format("features", model, symbol))
        except psycopg.Error as exc:
            return {"symbol": symbol, "error": str(exc).splitlines()[0]}
    if len(mine) != len(theirs) or not (mine["ts"].to_numpy() == theirs["ts"].to_numpy()).all():
        return {"symbol": symbol, "error": f"rows differ: worker {len(mine)}, model {len(theirs)}"}
    per_column = {}
    totals = {"compared": 0, "agree": 0, "null_mismatch": 0, "both_null": 0}
    for c in theirs.columns:
        if c in ("symbol", "ts") or c not in mine.columns:
            continue
        a = _numbers(mine[c])
        b = _numbers(theirs[c])
        both = ~np.isnan(a) & ~np.isnan(b)
        close = np.abs(a - b) <= RTOL * np.maximum(np.abs(a), np.abs(b)) + ATOL
        agree = int((both & close).sum())
        mismatch = int((np.isnan(a) != np.isnan(b)).sum())
        totals["compared"] += int(both.sum())
        totals["agree"] += agree
        totals["null_mismatch"] += mismatch
        totals["both_null"] += int((np.isnan(a) & np.isnan(b)).sum())
        if agree < both.sum() or mismatch:
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.abs(a - b) / np.maximum(np.abs(a), np.abs(b))
            per_column[c] = {
                "compared": int(both.sum()),
                "disagree": int(both.sum()) - agree,
                "null_mismatch": mismatch,
                "max_rel_diff": float(np.nanmax(np.where(both, rel, np.nan)))
                if both.any()
                else None,
            }
    share = totals["agree"] / totals["compared"] if totals["compared"] else None
    worst = sorted(per_column.items(), key=lambda kv: -(kv[1]["disagree"] + kv[1]["null_mismatch"]))
    return {
        "symbol": symbol,
        "rows": len(theirs),
        "rtol": RTOL,
        "atol": ATOL,
        **totals,
        "agree_share": None if share is None else round(share, 6),
        "columns_with_differences": len(per_column),
        "worst_columns": dict(worst[:8]),
    }


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=FULL_SYMBOLS, help="FX pairs (28)")
    parser.add_argument("--days", type=int, default=FULL_DAYS, help="calendar days of bars (30)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database if it already holds the bars (else it is created anew)",
    )
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help="comma-separated K14 families to run"
    )
    parser.add_argument(
        "--no-catalogue", action="store_true", help="skip the whole-catalogue build (K1-K14)"
    )
    parser.add_argument("--threads", type=int, default=2, help="catalogue dbt threads and workers")
    parser.add_argument("--out", help="JSON output (default .tickfeatures/bench/k14.json)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="update the families (and catalogue) run in the existing JSON output, keep the rest",
    )
    args = parser.parse_args()
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    full = (args.symbols, args.days) == (FULL_SYMBOLS, FULL_DAYS)
    cache = ROOT / ".tickfeatures" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    out = Path(
        args.out or cache / ("k14.json" if full else f"k14_{args.symbols}x{args.days}d.json")
    )
    target = cache / "k14_target"

    url = prepare_database(args, cache)
    variables = dbt_vars()
    tf("dbt", "parse", "--target-path", str(target), dsn=url)  # untimed: later runs parse partially
    settle(url)
    with psycopg.connect(url) as conn:
        n_bars, loaded = conn.execute(
            "select count(*), array_agg(distinct symbol) from staging.stg_bars_1m"
        ).fetchone()  # type: ignore[misc]
    loaded = sorted(loaded)
    references = reference_symbols(variables)
    check_symbol = next((s for s in loaded if s not in references), loaded[0])
    log(f"{n_bars:,} staged bars of {len(loaded)} symbols; agreement checked on {check_symbol}")

    figures: dict[str, dict] = {}
    for model in families:
        log(f"{model}: in-database (dbt run --select {model} --full-refresh --threads 1) ...")
        run = dbt_run(url, [model], 1, target)
        settle(url)
        entry: dict = {
            "in_database_s": round(run.wall_s, 2),
            "in_database_ok": run.ok,
            "dbt_execution_s": run.execution_s.get(model),
            "sql_s": run.refresh_s.get(model),
            "in_database_busy_cores": run.busy_cores,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if not run.ok:
            entry["in_database_error"] = run.error
            log(f"{model}: in-database build FAILED: {run.error[:400]}")
        else:
            log(f"{model}: in-database {run.wall_s:.1f} s wall (SQL {entry['sql_s']} s)")
        log(
            f"{model}: worker (COPY out, reference libraries in {args.threads} processes,"
            " COPY in) ..."
        )
        try:
            worker = run_worker(url, model, args.threads, variables)
        except Exception as exc:  # a worker that cannot run yet (e.g. spectral_bars' columns)
            worker = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"{model}: worker FAILED: {worker['error'][:400]}")
        settle(url)
        entry["worker"] = worker
        if "total_s" in worker:
            log(
                f"{model}: worker {worker['total_s']:.1f} s (read {worker['read_s']:.1f},"
                f" compute {worker['compute_s']:.1f}, write {worker['write_s']:.1f})"
            )
            if run.ok:
                entry["ratio_in_database_to_worker"] = round(run.wall_s / worker["total_s"], 3)
                entry["in_database_faster"] = run.wall_s < worker["total_s"]
                entry["agreement"] = agreement(url, model, check_symbol)
                log(f"{model}: agreement {json.dumps(entry['agreement'])[:600]}")
        figures[model] = entry

    catalogue: dict = {}
    if not args.no_catalogue:
        log(
            "whole catalogue: dbt run --select path:models/bar path:models/bar_k14"
            " --full-refresh ..."
        )
        run = dbt_run(url, ["path:models/bar", "path:models/bar_k14"], args.threads, target)
        catalogue = {
            "wall_s": round(run.wall_s, 2),
            "ok": run.ok,
            "limit_s": CATALOGUE_LIMIT_S,
            "within_limit": run.ok and run.wall_s <= CATALOGUE_LIMIT_S,
            "threads": args.threads,
            "models": len(run.execution_s),
            "dbt_execution_s": dict(sorted(run.execution_s.items())),
            "sql_s": dict(sorted(run.refresh_s.items())),
            "busy_cores": run.busy_cores,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if not run.ok:
            catalogue["error"] = run.error
        log(f"whole catalogue: {run.wall_s:.1f} s wall ({'ok' if run.ok else 'FAILED'})")
        settle(url)

    result = {
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "bars": n_bars,
        "symbols": len(loaded),
        "days": args.days,
        "refit_window": int(variables.get("bar_heavy_window", 1440)),
        "refit_stride": int(variables.get("bar_heavy_stride", 60)),
        "worker_processes": args.threads,
        "families": figures,
        "catalogue": catalogue,
    }
    if args.merge and out.exists():
        before = json.loads(out.read_text())
        if (before.get("bars"), before.get("symbols")) == (n_bars, len(loaded)):
            result["families"] = {**before.get("families", {}), **figures}
            result["families"] = {
                f: result["families"][f] for f in FAMILIES if f in result["families"]
            }
            result["catalogue"] = catalogue or before.get("catalogue", {})
        else:
            log(f"--merge: {out} holds another data set; replaced")
    print()
    print(
        f"{'family':<20} {'in-db s':>8} {'SQL s':>7} {'worker s':>9} {'read':>6} {'compute':>8}"
        f" {'write':>6} {'ratio':>6}  agreement"
    )
    for model, entry in result["families"].items():
        w = entry["worker"]
        agree = entry.get("agreement", {})
        share = agree.get("agree_share")
        compared = agree.get("compared")
        print(
            f"{model:<20} {entry['in_database_s'] if entry['in_database_ok'] else 'FAIL':>8}"
            f" {entry['sql_s'] if entry['sql_s'] is not None else '-':>7}"
            f" {w.get('total_s', 'FAIL'):>9} {w.get('read_s', '-'):>6} {w.get('compute_s', '-'):>8}"
            f" {w.get('write_s', '-'):>6} {entry.get('ratio_in_database_to_worker', '-'):>6}"
            f"  {'-' if share is None else f'{100 * share:.3f}% of {compared} cells'}"
        )
    whole = result["catalogue"]
    if whole:
        met = "met" if whole["within_limit"] else "NOT met"
        print(
            f"whole catalogue (K1-K14, {whole['threads']} threads): {whole['wall_s']} s"
            f" (limit {CATALOGUE_LIMIT_S:.0f} s: {met})"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
