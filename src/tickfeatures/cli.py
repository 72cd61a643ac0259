"""The `tickfeatures` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from tickfeatures import __version__, config, db, migrate
from tickfeatures.errors import TickfeaturesError


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"tickfeatures: error: {message} (see `{self.prog} --help`)\n")


def _say(message: str) -> None:
    print(message, flush=True)


def _info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- db ---------------------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace) -> int:
    from tickfeatures.embedded import Cluster

    if args.action == "url":
        _say(config.active_database().url)
        return 0
    if args.action == "env":
        from tickfeatures.dbt import libpq_env

        for key, value in libpq_env().items():
            _say(f"export {key}={_shell_quote(value)}")
        return 0
    if config.active_database().embedded is False and args.action in {"start", "stop"}:
        _info(f"note: {config.DSN_ENV} is set; commands use that server, not the embedded one")
    cluster = Cluster()
    if args.action == "start":
        _say(cluster.start())
    elif args.action == "stop":
        _say(cluster.stop())
    else:
        state = cluster.status()
        _say(state.describe())
        return 0 if state.running else 3
    return 0


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


# -- migrate ----------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    directory = config.project_root() / "migrations"
    with db.connect(autocommit=True) as conn:
        if args.status:
            states = migrate.status(conn, directory)
            for st in states:
                _say(f"{st.migration.path.name:40s} {st.state}")
            return 1 if any(st.state.startswith("EDITED") for st in states) else 0
        applied = migrate.apply(conn, directory)
        modules = migrate.sync_python_modules(conn, config.project_root() / "python_udfs")
    for m in applied:
        _say(f"applied {m.path.name}")
    for name in modules:
        _say(f"installed python_udfs/{name}.py")
    if not applied and not modules:
        _say("database is up to date")
    return 0


# -- generate ---------------------------------------------------------------------------------


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise TickfeaturesError(f"--start {text!r} is not an ISO-8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_generate(args: argparse.Namespace) -> int:
    from tickfeatures import generate, schema

    specs = generate.load_symbols(config.project_root() / "seeds" / "symbols.csv")
    default = ["EURUSD", "GBPUSD"] if args.kind == "l2" else ["EURUSD", "GBPUSD", "USDJPY"]
    names = args.symbols.split(",") if args.symbols else default
    if args.pairs is not None:
        if args.pairs < 1:
            raise TickfeaturesError(f"--pairs must be at least 1, got {args.pairs}")
        symbols = generate.fx_pairs(args.pairs, specs)
    else:
        symbols = generate.resolve_symbols([n.strip() for n in names if n.strip()], specs)
    start = _parse_time(args.start)
    if args.kind == "l2":
        rows = generate.generate_l2(symbols, start, timedelta(minutes=args.minutes), seed=args.seed)
        columns = schema.L2_COLUMNS
    else:
        rows = generate.generate_bars(
            symbols, start, start + timedelta(days=args.days), seed=args.seed
        )
        columns = schema.BAR_COLUMNS
    if args.out:
        n = generate.write_csv(rows, columns, Path(args.out))
        _say(f"wrote {n} rows to {args.out}")
        return 0
    # --load: through a temporary CSV, so the loader's accounting applies as for any file.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"generated_{args.kind}_{args.seed}.csv"
        generate.write_csv(rows, columns, path)
        return _load_paths(args.kind, [path])


# -- load -------------------------------------------------------------------------------------


class _ProgressBar:
    """`file [#####.....] 45%  450,000 rows  210,000 rows/s` on stderr, redrawn twice a second."""

    def __init__(self, name: str, enabled: bool) -> None:
        self.name = name
        self.enabled = enabled
        self.started = time.perf_counter()
        self.last = 0.0
        self.drawn = False

    def __call__(self, rows: int, position: int, size: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.5:
            return
        self.last = now
        share = min(position / size, 1.0) if size else 1.0
        filled = int(share * 24)
        rate = rows / (now - self.started) if now > self.started else 0.0
        sys.stderr.write(
            f"\r{self.name} [{'#' * filled}{'.' * (24 - filled)}] {share:4.0%}"
            f"  {rows:,} rows  {rate:,.0f} rows/s "
        )
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


def _load_paths(
    kind: str,
    paths: Sequence[Path],
    *,
    mapping: dict[str, str] | None = None,
    salvage: bool = False,
    progress: bool | None = None,
    settings: object = None,
) -> int:
    from tickfeatures.load import load_file

    show = sys.stderr.isatty() if progress is None else progress
    failed: list[str] = []
    totals = {"loaded": 0, "quarantined": 0, "duplicate": 0, "in": 0, "skipped": 0}
    reasons: dict[str, int] = {}
    started_all = time.perf_counter()
    with db.connect(autocommit=True) as conn:
        for path in paths:
            started = time.perf_counter()
            bar = _ProgressBar(path.name, show)
            try:
                result = load_file(
                    conn, kind, path, bar, mapping=mapping, salvage=salvage, settings=settings
                )
            finally:
                bar.close()
            elapsed = time.perf_counter() - started
            if result.status == "failed":
                failed.append(result.error or path.name)
                _info(f"FAILED {result.error}")
                continue
            if result.status == "skipped":
                totals["skipped"] += 1
                _say(f"skipped {path.name}: {result.error}")
                continue
            rate = result.rows_in / elapsed if elapsed > 0 else 0.0
            why = ", ".join(f"{n} {r}" for r, n in sorted(result.reasons.items()))
            flags = (
                f", {result.rows_crossed} crossed and {result.rows_locked} locked books flagged"
                if result.rows_crossed or result.rows_locked
                else ""
            )
            verb = "SALVAGED" if result.status == "salvaged" else "loaded"
            _say(
                f"{verb} {path.name} ({result.format}): {result.rows_loaded} rows, "
                f"{result.rows_quarantined} quarantined{' (' + why + ')' if why else ''}, "
                f"{result.rows_duplicate} identical duplicates skipped{flags} "
                f"[{result.rows_in} in, {elapsed:.1f} s, {rate:,.0f} rows/s]"
            )
            if result.error:
                _info(f"  {'broken: ' if result.status == 'salvaged' else 'note: '}{result.error}")
            totals["in"] += result.rows_in
            totals["loaded"] += result.rows_loaded
            totals["quarantined"] += result.rows_quarantined
            totals["duplicate"] += result.rows_duplicate
            for r, n in result.reasons.items():
                reasons[r] = reasons.get(r, 0) + n
    if len(paths) > 1:
        elapsed = time.perf_counter() - started_all
        why = "; ".join(f"{r}: {n}" for r, n in sorted(reasons.items()))
        _say(
            f"{len(paths)} files: {totals['loaded']} rows loaded, {totals['quarantined']} "
            f"quarantined{' (' + why + ')' if why else ''}, {totals['duplicate']} duplicates "
            f"skipped, {totals['skipped']} already loaded, {len(failed)} failed "
            f"[{totals['in']} rows in {elapsed:.1f} s]"
        )
        for error in failed:
            _say(f"  failed: {error}")
    return 1 if failed else 0


def cmd_load(args: argparse.Namespace) -> int:
    from tickfeatures.load import SPECS
    from tickfeatures.readers import parse_mapping

    try:
        mapping = parse_mapping(args.map, Path(args.map_file) if args.map_file else None)
    except OSError as exc:
        raise TickfeaturesError(f"--map-file {args.map_file}: {_os_reason(exc)}") from None
    columns = (*SPECS[args.kind].columns, "date", "time")  # a stamp in two fields
    unknown = [dst for dst in mapping.values() if dst not in columns]
    if unknown:
        raise TickfeaturesError(
            f"--map: {', '.join(unknown)} is not a column of the table; columns: symbol, ts, "
            + (
                "bid_price_1..10, bid_size_1..10, ask_price_1..10, ask_size_1..10"
                if args.kind == "l2"
                else ", ".join(columns[2:])
            )
        )
    from tickfeatures.formats import Settings

    settings = Settings(
        format=args.format,
        no_header=args.no_header,
        columns=tuple(c.strip() for c in args.columns.split(",")) if args.columns else None,
        delimiter=args.delimiter,
        symbol=args.symbol,
        symbol_from_name=args.symbol_from_name,
        tz=args.tz,
        ts_unit=args.ts_unit,
        ts_format=args.ts_format,
        price_scale=args.price_scale,
        ts_field=args.ts_field,
        same_ts=args.same_ts,
    )
    return _load_paths(
        args.kind,
        [Path(p) for p in args.files],
        mapping=mapping,
        settings=settings,
        salvage=args.salvage,
        progress=args.progress,
    )


def _os_reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


# -- status -----------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from tickfeatures.status import report

    return report(_say)


# -- dbt and demo -----------------------------------------------------------------------------


def cmd_dbt(args: argparse.Namespace) -> int:
    from tickfeatures.dbt import run_dbt

    return run_dbt(args.dbt_args).returncode


def cmd_refresh(args: argparse.Namespace) -> int:
    """Bring every relation up to date with the stored snapshots and bars."""
    from tickfeatures.refresh import refresh

    refresh(
        full=args.full, select=args.select, threads=args.threads, verbose=args.verbose, say=_say
    )
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from tickfeatures import schedule

    if args.action == "install":
        schedule.install(say=_say)
        return 0
    if args.action == "every":
        if not args.interval:
            raise TickfeaturesError(
                "schedule every needs an interval, e.g. 10s, 1m or '*/5 * * * *'"
            )
        return schedule.every(" ".join(args.interval), say=_say)
    if args.interval:
        raise TickfeaturesError(f"schedule {args.action} takes no interval")
    if args.action == "off":
        return schedule.off(say=_say)
    return schedule.status(say=_say)


def cmd_training_set(args: argparse.Namespace) -> int:
    from tickfeatures import serving

    out = Path(args.out)
    if not out.name.lower().endswith(".parquet"):
        raise TickfeaturesError(f"--out {out}: the training set is written as Parquet (.parquet)")
    names = [name.strip() for item in args.features for name in item.split(",") if name.strip()]
    started = time.perf_counter()
    events = serving.read_events(Path(args.events))
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = _ProgressBar(Path(args.events).name, show)

    def progress(done: int, total: int) -> None:
        bar(done, done, total)

    try:
        with db.connect() as conn:
            frame = serving.training_set(
                conn, events, names, max_age=args.max_age, progress=progress
            )
    finally:
        bar.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    features = len(frame.columns) - len(events.columns)
    _say(
        f"wrote {out}: {len(frame):,} events x {features} columns (features and their source"
        f" times) in {time.perf_counter() - started:.1f} s"
    )
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from tickfeatures import registry

    if args.action == "list":
        if args.name:
            raise TickfeaturesError("features list takes no name (use --family F)")
        return registry.list_features(args.family, say=_say)
    if not args.name:
        raise TickfeaturesError("features show needs a feature name, e.g. ofi_10s")
    return registry.show_feature(args.name, say=_say)


def cmd_demo(args: argparse.Namespace) -> int:
    from tickfeatures.dbt import run_dbt

    if config.active_database().embedded:
        from tickfeatures.embedded import Cluster

        _say(f"db: {Cluster().start()}")
    with db.connect(autocommit=True) as conn:
        applied = migrate.apply(conn, config.project_root() / "migrations")
        migrate.sync_python_modules(conn, config.project_root() / "python_udfs")
        _say(f"migrate: {len(applied)} applied" if applied else "migrate: up to date")
        have = conn.execute("select count(*) from market.l2_snapshots").fetchone()[0]  # type: ignore[index]
    if have == 0:
        generate_args = argparse.Namespace(
            kind="l2",
            symbols=None,
            pairs=None,
            start="2026-01-05T09:00:00+00:00",
            minutes=args.minutes,
            seed=42,
            out=None,
        )
        if cmd_generate(generate_args) != 0:
            return 1
        bars_args = argparse.Namespace(
            kind="bars",
            symbols=None,
            pairs=None,
            start="2026-01-02T00:00:00+00:00",
            days=7,
            seed=42,
            out=None,
        )
        if cmd_generate(bars_args) != 0:
            return 1
    else:
        _say(f"sample data: {have} snapshots already loaded")
    build = run_dbt(["build", "--quiet"] if not args.verbose else ["build"])
    if build.returncode != 0:
        raise TickfeaturesError("dbt build failed (see its output above)")
    _say("dbt build: ok")
    with db.connect() as conn:
        cur = conn.execute(
            "select symbol, ts, mid_price, bid_ask_spread, spread_bps, microprice,"
            " order_book_imbalance, price_impact_buy"
            " from features.microstructure order by ts desc, symbol limit 6"
        )
        names = [d.name for d in cur.description or []]
        rows = cur.fetchall()
        count = conn.execute("select count(*) from features.microstructure").fetchone()[0]  # type: ignore[index]
        heavy = conn.execute(
            "select distinct on (symbol) symbol, ts, hht_market_state, hht_dominant_freq,"
            " hmm_state, wavelet_energy_d1, spectral_dominant_period, garch_vol"
            " from features.heavy_features order by symbol, ts desc"
        )
        heavy_names = [d.name for d in heavy.description or []]
        heavy_rows = heavy.fetchall()
        bar = conn.execute(
            "select distinct on (symbol) symbol, ts, rsi_rate_w15, bb_pctb_rate_w30,"
            " reg_a2_rate_w60, rvol_yang_zhang_w60, amihud_w60, session_london"
            " from features.bar_features order by symbol, ts desc"
        )
        bar_names = [d.name for d in bar.description or []]
        bar_rows = bar.fetchall()
        bar_count = conn.execute(
            "select count(*) from features.feature_catalog where model = any(%s)",
            [_bar_models()],
        ).fetchone()[0]  # type: ignore[index]
    _say(f"\nfeatures.microstructure: {count} rows; the latest:")
    _say(" | ".join(names))
    for row in rows:
        _say(" | ".join(_fmt(v) for v in row))
    _say("\nfeatures.heavy_features (HHT, HMM, wavelet, spectral, GARCH), the latest:")
    _say(" | ".join(heavy_names))
    for row in heavy_rows:
        _say(" | ".join(_fmt(v) for v in row))
    _say(f"\nfeatures.bar_features ({bar_count} features of one-minute bars), the latest bar:")
    _say(" | ".join(bar_names))
    for row in bar_rows:
        _say(" | ".join(_fmt(v) for v in row))
    from tickfeatures import schedule

    _say("\nRefresh inside the database (`call features.refresh()`, on a pg_cron schedule):")
    schedule.install(refresh_first=False, say=_say)
    schedule.status(say=_say)
    _say(f'\nQuery them yourself: psql "$({Path(sys.argv[0]).name} db url)"')
    return 0


def _bar_models() -> list[str]:
    """The bar family models (models/bar/: K1-K13; models/bar_k14/: K14)."""
    root = config.project_root() / "models"
    return sorted(p.stem for folder in ("bar", "bar_k14") for p in (root / folder).glob("*.sql"))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tickfeatures",
        description="In-database feature engine for order-book snapshots and OHLCV bars.",
        epilog=f"The active database is ${config.DSN_ENV} when set, else the embedded cluster.",
    )
    parser.add_argument("--version", action="version", version=f"tickfeatures {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "db",
        help="the embedded PostgreSQL cluster",
        description="Start, stop or inspect the embedded cluster in .tickfeatures/;"
        " `url` and `env` describe the active database.",
    )
    p.add_argument(
        "action",
        choices=["start", "stop", "status", "url", "env"],
        help="status exits 3 when stopped; env prints PG* exports for other tools",
    )
    p.set_defaults(func=cmd_db)

    p = sub.add_parser(
        "migrate",
        help="apply the SQL migrations in migrations/",
        description="Apply each numbered SQL file once, in a transaction.",
    )
    p.add_argument("--status", action="store_true", help="list migrations and their state")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "generate",
        help="generate deterministic sample data",
        description="Seeded sample L2 snapshots or M1 bars, as CSV or loaded.",
    )
    p.add_argument("kind", choices=["l2", "bars"])
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--symbols",
        help="comma-separated (default: EURUSD,GBPUSD for l2; EURUSD,GBPUSD,USDJPY for bars)",
    )
    which.add_argument(
        "--pairs",
        type=int,
        help="the first N of the 28 major FX pairs (EURUSD, GBPUSD, ..., CHFJPY), then FX029...",
    )
    p.add_argument("--start", default="2026-01-05T09:00:00+00:00", help="ISO-8601 start (UTC)")
    p.add_argument("--minutes", type=float, default=30.0, help="l2: minutes of snapshots")
    p.add_argument("--days", type=float, default=7.0, help="bars: days of bars")
    p.add_argument("--seed", type=int, default=42)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="write CSV here (.csv or .csv.gz)")
    target.add_argument("--load", action="store_true", help="load into the active database")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "load",
        help="load snapshot or bar files (CSV, JSON lines, Parquet; .gz) into market.*",
        description="Load files into market.l2_snapshots or market.bars_1m. Formats, told by "
        "the name or the first bytes: wide CSV with a header (.csv, .csv.gz); JSON lines "
        "(.jsonl, .jsonl.gz) with ts or timestamp (ISO-8601, or epoch seconds, milliseconds, "
        "microseconds or nanoseconds told by magnitude), symbol, and bids/asks as "
        "[[price, size], ...] best first, or the wide columns; Parquet (wide or bids/asks). "
        "Every row is loaded, quarantined in ops.quarantine with a reason, or skipped as an "
        "identical duplicate; each file is one transaction, and a file already loaded (same "
        "checksum) is skipped.",
    )
    p.add_argument("kind", choices=["l2", "bars"])
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--map",
        metavar="SRC=DST,...",
        help="column mapping from the file's names to the table's, e.g. "
        "--map time=ts,instrument=symbol (the seeds' timestamp and pair work without one)",
    )
    p.add_argument(
        "--map-file", metavar="FILE", help="the same as a file: src=dst lines, or a JSON object"
    )
    p.add_argument(
        "--salvage",
        action="store_true",
        help="load the readable part of a truncated or corrupt file (status salvaged) "
        "instead of committing nothing from it",
    )
    fmt = p.add_argument_group(
        "formats",
        "A vendor's format is detected from the header or the file name where that is "
        "unambiguous (the README's table lists them); the general options adapt any other "
        "file to the table's columns.",
    )
    fmt.add_argument(
        "--format",
        metavar="NAME",
        help="read the files in a vendor's format: databento (MBP-10, MBP-1, OHLCV-1m; CSV, "
        "Parquet, DBN), tardis (book_snapshot_N, quotes), lobster, histdata-ascii-m1, "
        "histdata-mt-m1, histdata-ascii-tick, dukascopy, binance-klines; csv: the table's own "
        "columns, no detection",
    )
    fmt.add_argument(
        "--no-header", action="store_true", help="the file has no header line (needs --columns)"
    )
    fmt.add_argument(
        "--columns",
        metavar="NAME,...",
        help="the fields' names, in order, for a file without a header: the table's names, "
        "date and time for a stamp in two fields, anything else for a field not loaded",
    )
    fmt.add_argument("--delimiter", metavar="CHAR", help="the field separator (default ,)")
    fmt.add_argument("--symbol", metavar="VALUE", help="every row's symbol")
    fmt.add_argument(
        "--symbol-from-name",
        metavar="REGEX",
        help="the symbol from the file name: a regular expression with one capture group",
    )
    fmt.add_argument(
        "--tz",
        metavar="ZONE",
        help="the zone of stamps without an offset: a fixed offset (-05:00) or an IANA name "
        "(America/New_York); default UTC, or the format's own",
    )
    fmt.add_argument(
        "--ts-unit", choices=["s", "ms", "us", "ns"], help="the unit of numeric epoch stamps"
    )
    fmt.add_argument(
        "--ts-format",
        metavar="LAYOUT",
        help="a fixed-width stamp layout: %%Y %%m %%d %%H %%M %%S and %%f last, "
        "e.g. '%%Y%%m%%d %%H%%M%%S'",
    )
    fmt.add_argument(
        "--price-scale",
        type=float,
        metavar="X",
        help="multiply prices by X (0.0001 for prices in 1/10,000 of a unit)",
    )
    fmt.add_argument(
        "--ts-field",
        metavar="NAME",
        help="the vendor's other stamp (ts_event, timestamp) instead of its receive time",
    )
    fmt.add_argument(
        "--same-ts",
        choices=["quarantine", "first", "last"],
        default="quarantine",
        help="records of one symbol in the same microsecond: keep the first or the last "
        "(the others quarantined with a reason), or quarantine the later ones as "
        "conflicting duplicates (default)",
    )
    progress = p.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        action="store_true",
        default=None,
        help="show a progress bar (default: on a terminal)",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser(
        "status",
        help="what the active database holds: migrations, files, data, refresh state",
        description="The active database (without its password), migrations applied and "
        "pending, the ingest ledger's files by status (loaded, salvaged, failed, "
        "interrupted) with their rows, the snapshots and bars stored, the latest ingest, and "
        "per feature model its last refresh and the writes it has not processed yet.",
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "dbt",
        help="run dbt against the active database",
        description="Run dbt with this project and the active database, e.g. "
        "`tickfeatures dbt run --select ofi+`.",
    )
    p.add_argument("dbt_args", nargs=argparse.REMAINDER, help="arguments passed to dbt")
    p.set_defaults(func=cmd_dbt)

    p = sub.add_parser(
        "refresh",
        help="bring every feature family, mart and view up to date",
        description="Bring the database to a complete, current state: reference data (the "
        "dbt seeds), staging, every feature family, the marts and views. The first run builds "
        "everything; later runs compute only what the writes since then change (late rows "
        "included, whatever wrote them) plus the warm-up their windows need. The same as "
        "`dbt build --resource-type seed --resource-type model`.",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="rebuild everything (--full-refresh); readers keep every relation meanwhile",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=4,
        help="models run at once (default 4: an incremental run waits on dbt more than on SQL)",
    )
    p.add_argument("--select", nargs="+", help="a dbt selection instead of everything")
    p.add_argument("--verbose", action="store_true", help="show dbt's full output")
    p.set_defaults(func=cmd_refresh)

    p = sub.add_parser(
        "schedule",
        help="refresh inside the database on a pg_cron schedule: install|every|off|status",
        description="install: compile every incremental model into a procedure for `call "
        "features.refresh()`, which refreshes with no dbt and no client (the same rows as "
        "`tickfeatures refresh`); every INTERVAL: a pg_cron job that calls it (10s, 1m, 5m, 2h "
        "or a cron expression; installs the procedures when missing or stale); off: remove "
        "the job; status: the job, its last runs and how far behind each model is.",
    )
    p.add_argument("action", choices=["install", "every", "off", "status"])
    p.add_argument("interval", nargs="*", help="for `every`: 10s, 1m, 5m, 2h, or a cron expression")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser(
        "features",
        help="the feature registry: list [--family F] | show NAME",
        description="list: every feature of features.feature_catalog with its family, version "
        "and unit; show NAME: its definition, unit, window, version history, lineage and "
        "calculation times.",
    )
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("name", nargs="?", help="for `show`: the feature, e.g. ofi_10s")
    p.add_argument("--family", help="for `list`: one family, e.g. ofi")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser(
        "training-set",
        help="a point-in-time training set: events (symbol, ts, ...) with features as known then",
        description="For each event (a row of EVENTS: symbol, ts with a time zone, any other "
        "columns), every asked feature as it was known at ts: per family, its newest row at or "
        "before ts (a bar once closed: open + 1 minute <= ts) and that row's ts as "
        "<family>_ts. Written to Parquet. The same query as features.training_set() in SQL "
        "and tickfeatures.training_set() in Python.",
    )
    p.add_argument("events", help="events file: .csv, .csv.gz or .parquet")
    p.add_argument(
        "--features",
        nargs="+",
        required=True,
        help="names, families, models or globs (ofi_*), space- or comma-separated;"
        " targets only by name",
    )
    p.add_argument(
        "--max-age",
        help="NULL where the newest row was known longer than this before the event"
        " (e.g. '5 minutes')",
    )
    p.add_argument("--out", required=True, help="output .parquet file")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None,
        help="show a progress bar (default: on a terminal)",
    )  # fmt: skip
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_training_set)

    p = sub.add_parser(
        "demo",
        help="start, migrate, load sample data, build, show features",
        description="What `make demo` runs after installing: idempotent.",
    )
    p.add_argument("--minutes", type=float, default=30.0, help="minutes of sample L2 data")
    p.add_argument("--verbose", action="store_true", help="show dbt's full output")
    p.set_defaults(func=cmd_demo)

    from tickfeatures import plot, quality, roles

    quality.add_command(sub)
    plot.add_command(sub)
    roles.add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # psycopg logs a second line of its own ("error ignored terminating <psycopg.Copy>")
    # when a COPY ends with the connection lost; the error below already says it, once
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TickfeaturesError as exc:
        # one line, whatever the message quotes back (a user's value may hold a line break)
        text = str(exc).replace("\r", "\\r").replace("\n", "\\n")
        print(f"tickfeatures: error: {text}", file=sys.stderr)
        return exc.exit_code
    except psycopg.Error as exc:
        text = str(exc).strip()
        print(
            f"tickfeatures: database error: {text.splitlines()[0] if text else exc!r}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("tickfeatures: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout's reader went away (`tickfeatures status | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a path the OS refused (missing, too long, a directory, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tickfeatures: error: {where}{_os_reason(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
