"""`tickfeatures plot`: PNG charts of one symbol's book, features and data quality.

- heatmap: resting size by time and price (bids blue, asks red) with the mid price;
- microstructure: mid price, spread, order-book imbalance and OFI from the feature tables;
- quality: the quality.* views as a dashboard.

Long ranges are bucketed in SQL (time_bucket) so that a chart reads at most a few thousand
rows whatever the range. matplotlib is imported inside the commands, with the Agg backend,
so `tickfeatures --help` stays fast and no display is needed.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tickfeatures import quality
from tickfeatures.errors import TickfeaturesError

DPI = 100
# figure sizes in inches at DPI: the PNGs are exactly this many pixels x100
SIZES = {"heatmap": (12.0, 6.5), "microstructure": (12.0, 9.0), "quality": (14.0, 9.0)}
HEATMAP_COLUMNS = 400  # at most this many time columns
HEATMAP_PRICE_ROWS = 300  # at most this many price rows
LINE_POINTS = 2000  # feature series: bucket means beyond this many snapshots
QUALITY_POINTS = 300  # quality series: bucket shares and scores beyond this many snapshots
GAP_COLOUR = "#f2b134"
GAP_BARS = 60  # up to this many gaps are drawn as bars as wide as the gap


def _matplotlib() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_text(draw: Callable[..., str]) -> Callable[..., str]:
    """Draw every text of the figure as plain text: symbols, file names and reasons come
    from the user, and matplotlib would read `$...$` in them as mathematics (and fail on
    `$$`). None of our own labels uses mathtext."""

    @functools.wraps(draw)
    def plain(*args: Any, **kwargs: Any) -> str:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return draw(*args, **kwargs)

    return plain


def _rows(conn: psycopg.Connection, query: Any, params: Any) -> list[tuple]:
    return conn.execute(query, params).fetchall()


def _time_span(conn: psycopg.Connection, scope: quality.Scope) -> tuple[datetime, datetime, int]:
    t_from, t_to = scope.bounds
    first, last, count = _rows(
        conn,
        "select min(ts), max(ts), count(*) from market.l2_snapshots"
        " where symbol = %s and ts between %s and %s",
        (scope.symbol, t_from, t_to),
    )[0]
    return first, last, count


def _bucket_width(first: datetime, last: datetime, count: int, target: int) -> timedelta | None:
    """None when `count` rows fit; else a whole number of milliseconds giving ~target buckets."""
    if count <= target:
        return None
    span_ms = max((last - first) / timedelta(milliseconds=1), 1.0)
    return timedelta(milliseconds=max(1, math.ceil(span_ms / target)))


def _bucketed(column: str, width: timedelta | None) -> sql.Composable:
    """`column`, or its time_bucket of `width`."""
    ts = sql.SQL(column)
    return sql.SQL("time_bucket({}, {})").format(sql.Literal(width), ts) if width else ts


def _describe_width(width: timedelta) -> str:
    seconds = width.total_seconds()
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


def _time_axis(ax: Any, label: bool = True) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))
    if label:
        ax.set_xlabel("time (UTC)")


def _break_at_gaps(
    times: list[datetime], values: list[Any], gap: timedelta, width: timedelta | None
) -> tuple[list[datetime], list[Any]]:
    """Insert a NaN point inside each gap (longer than `gap` and than one bucket), so that
    lines stop at a gap instead of bridging it."""
    import numpy as np

    limit = max(gap, width or timedelta(0))
    cut = [i for i in range(1, len(times)) if times[i] - times[i - 1] > limit]
    new_times = list(times)
    new_values = [np.asarray(v, dtype=float) for v in values]
    for i in reversed(cut):
        new_times.insert(i, times[i - 1] + (times[i] - times[i - 1]) / 2)
        new_values = [np.insert(v, i, np.nan) for v in new_values]
    return new_times, new_values


def _title(kind: str, scope: quality.Scope, first: datetime, last: datetime) -> str:
    return f"{kind}: {scope.symbol}, {quality.fmt_time(first)} to {quality.fmt_time(last)} UTC"


def _save(fig: Any, out: Path) -> None:
    plt = _matplotlib()
    fig.savefig(out, dpi=DPI, format="png")
    plt.close(fig)


# -- heatmap -----------------------------------------------------------------------------------

_SIDES = ("bid", "ask")


def _level_values() -> sql.Composable:
    """VALUES of (side, price, size) for the 20 level slots of a snapshot `s`."""
    return sql.SQL(", ").join(
        sql.SQL("({}, {}, {})").format(
            sql.Literal(side),
            sql.Identifier("s", f"{side}_price_{i}"),
            sql.Identifier("s", f"{side}_size_{i}"),
        )
        for side in _SIDES
        for i in quality.LEVELS
    )


def _price_grid(prices: Any) -> tuple[float, float]:
    """(lowest price, row height): the tick when it gives few enough rows, else a multiple."""
    import numpy as np

    distinct = np.unique(np.round(prices, 9))
    low, high = float(distinct[0]), float(distinct[-1])
    steps = np.diff(distinct)
    tick = float(steps[steps > 0].min()) if (steps > 0).any() else max(abs(low) * 1e-4, 1e-9)
    rows = (high - low) / tick + 1
    return low, tick * max(1, math.ceil(rows / HEATMAP_PRICE_ROWS))


@_plain_text
def plot_heatmap(conn: psycopg.Connection, scope: quality.Scope, out: Path) -> str:
    import numpy as np
    from matplotlib import colors

    plt = _matplotlib()
    first, last, count = _time_span(conn, scope)
    # one column per snapshot, or buckets of 4 snapshots or more on average, so that jittered
    # timestamps leave no empty bucket
    width = _bucket_width(first, last, count, min(HEATMAP_COLUMNS, max(count // 4, 1)))
    if count <= HEATMAP_COLUMNS:
        width = None
    # without bucketing each snapshot is its own column, from its ts to the next one's
    bucket = (
        sql.SQL("time_bucket({}, s.ts)").format(sql.Literal(width)) if width else sql.SQL("s.ts")
    )
    t_from, t_to = scope.bounds
    query = sql.SQL(
        """
        with snapshots as (
            select {bucket} as bucket, s.*
            from market.l2_snapshots as s
            where s.symbol = %(symbol)s and s.ts between %(t_from)s and %(t_to)s
        ),
        buckets as (
            select bucket, count(*) as n, avg((bid_price_1 + ask_price_1) / 2) as mid
            from snapshots group by bucket
        ),
        resting as (
            select s.bucket, slot.side, slot.price, sum(slot.size) as size
            from snapshots as s
            cross join lateral (values {levels}) as slot (side, price, size)
            where slot.price is not null and slot.size > 0
            group by s.bucket, slot.side, slot.price
        )
        select buckets.bucket, buckets.mid, resting.side, resting.price,
            resting.size / buckets.n as mean_size
        from buckets left join resting on buckets.bucket = resting.bucket
        order by buckets.bucket
        """
    ).format(bucket=bucket, levels=_level_values())
    rows = _rows(conn, query, {"symbol": scope.symbol, "t_from": t_from, "t_to": t_to})
    starts = sorted({r[0] for r in rows})
    mids = {r[0]: r[1] for r in rows}
    slots = [r for r in rows if r[2] is not None]
    if not slots:
        raise TickfeaturesError(f"no price levels with a size in range: {scope.describe()}")
    prices = np.array([r[3] for r in slots], dtype=float)
    low, height = _price_grid(prices)
    n_rows = round((prices.max() - low) / height) + 1
    edges, column = _time_columns(starts, width, scope.gap)
    grids = {side: np.zeros((n_rows, len(edges) - 1)) for side in _SIDES}
    for b, _mid, side, price, size in slots:
        grids[side][round((price - low) / height), column[b]] += size
    y_edges = low - height / 2 + height * np.arange(n_rows + 1)

    # one colour scale for both sides (square root: deep small queues stay visible)
    positive = np.concatenate([g[g > 0] for g in grids.values()])
    vmax = float(np.percentile(positive, 99.5))
    norm = colors.PowerNorm(gamma=0.5, vmin=0.0, vmax=vmax if vmax > 0 else 1.0)

    fig, ax = plt.subplots(figsize=SIZES["heatmap"], dpi=DPI, layout="constrained")
    meshes = {}
    for side, cmap in (("bid", "Blues"), ("ask", "Reds")):
        grid = np.ma.masked_equal(grids[side], 0)
        meshes[side] = ax.pcolormesh(edges, y_edges, grid, cmap=cmap, norm=norm, shading="flat")
    # the mid at each column's centre, broken where columns are blank
    centres: list[datetime] = []
    mid: list[float] = []
    for i, b in enumerate(starts):
        k = column[b]
        if i and k - column[starts[i - 1]] > 1:
            centres.append(edges[k])
            mid.append(math.nan)
        centres.append(edges[k] + (edges[k + 1] - edges[k]) / 2)
        mid.append(math.nan if mids[b] is None else float(mids[b]))
    ax.plot(centres, mid, color="black", linewidth=1.0, label="mid price (mean per column)")
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_ylabel("price")
    ax.ticklabel_format(axis="y", useOffset=False)
    _time_axis(ax)
    ax.legend(loc="upper left", framealpha=0.9)
    ax.set_title(
        _title("Order-book depth", scope, first, last)
        + f"\n{count} snapshots"
        + (f", mean per {_describe_width(width)} column" if width else ", one column each")
        + f"; price rows of {height:.6g}"
    )
    fig.colorbar(meshes["ask"], ax=ax, pad=0.01, label="ask size resting at the price")
    fig.colorbar(meshes["bid"], ax=ax, pad=0.01, label="bid size resting at the price")
    _save(fig, out)
    return f"{count} snapshots in {len(edges) - 1} columns x {n_rows} price rows"


def _time_columns(
    starts: list[datetime], width: timedelta | None, gap: timedelta
) -> tuple[list[datetime], dict[datetime, int]]:
    """Column edges and each bucket's column. Buckets: a regular grid, empty ones blank.
    Snapshots: each until the next one, except across a gap, which gets a blank column."""
    if width is not None:
        column = {b: round((b - starts[0]) / width) for b in starts}
        n = max(column.values()) + 1
        return [starts[0] + k * width for k in range(n + 1)], column
    steps = [b - a for a, b in itertools.pairwise(starts)]
    typical = sorted(steps)[len(steps) // 2] if steps else timedelta(milliseconds=100)
    edges = [starts[0]]
    column = {}
    for i, start in enumerate(starts):
        column[start] = len(edges) - 1
        following = starts[i + 1] if i + 1 < len(starts) else start + typical
        if following - start > gap:
            edges.append(start + typical)  # the snapshot's own column, then the blank gap
        edges.append(following)
    return edges, column


# -- microstructure ----------------------------------------------------------------------------

FEATURE_COLUMNS = (
    "mid_price",
    "spread_bps",
    "order_book_imbalance",
    "order_book_imbalance_5",
    "ofi_10s",
    "ofi_1m",
)


@_plain_text
def plot_microstructure(conn: psycopg.Connection, scope: quality.Scope, out: Path) -> str:
    plt = _matplotlib()
    missing = [
        name
        for name in ("features.microstructure", "features.ofi")
        if _rows(conn, "select to_regclass(%s)", (name,))[0][0] is None
    ]
    if missing:
        raise TickfeaturesError(
            f"{' and '.join(missing)} not built; run `tickfeatures refresh` first"
        )
    t_from, t_to = scope.bounds
    first, last, count = _rows(
        conn,
        "select min(m.ts), max(m.ts), count(*) from features.microstructure as m"
        " inner join features.ofi as o on m.symbol = o.symbol and m.ts = o.ts"
        " where m.symbol = %s and m.ts between %s and %s",
        (scope.symbol, t_from, t_to),
    )[0]
    if count == 0:
        raise TickfeaturesError(
            f"no features for {scope.describe()}; run `tickfeatures refresh` first"
        )
    width = _bucket_width(first, last, count, LINE_POINTS)
    columns = sql.SQL(", ").join(
        sql.SQL("avg({c})::double precision" if width else "{c}").format(c=sql.Identifier(c))
        for c in FEATURE_COLUMNS
    )
    time_expr = _bucketed("ts", width)
    query = sql.SQL(
        "select {t} as t, {columns} from features.microstructure"
        " inner join features.ofi using (symbol, ts)"
        " where symbol = %s and ts between %s and %s {group} order by 1"
    ).format(
        t=time_expr,
        columns=columns,
        group=sql.SQL("group by 1") if width else sql.SQL(""),
    )
    rows = _rows(conn, query, (scope.symbol, t_from, t_to))
    times, values = _break_at_gaps(
        [r[0] for r in rows],
        [[r[i + 1] for r in rows] for i in range(len(FEATURE_COLUMNS))],
        scope.gap,
        width,
    )
    series = dict(zip(FEATURE_COLUMNS, values, strict=True))

    fig, axes = plt.subplots(
        4, 1, sharex=True, figsize=SIZES["microstructure"], dpi=DPI, layout="constrained"
    )
    mid_ax, spread_ax, obi_ax, ofi_ax = axes
    mid_ax.plot(times, series["mid_price"], color="black", linewidth=0.9, label="mid price")
    mid_ax.set_ylabel("mid price (price)")
    mid_ax.ticklabel_format(axis="y", useOffset=False)
    spread_ax.plot(times, series["spread_bps"], color="tab:purple", linewidth=0.9, label="spread")
    spread_ax.set_ylabel("spread (bps of mid)")
    obi_ax.plot(
        times, series["order_book_imbalance"], color="tab:blue", linewidth=0.8, label="level 1"
    )
    obi_ax.plot(
        times,
        series["order_book_imbalance_5"],
        color="tab:orange",
        linewidth=0.8,
        label="levels 1-5",
    )
    obi_ax.set_ylim(-1.05, 1.05)
    obi_ax.set_ylabel("imbalance (-1..1)")
    ofi_ax.plot(times, series["ofi_10s"], color="tab:green", linewidth=0.8, label="OFI 10 s")
    ofi_ax.plot(times, series["ofi_1m"], color="tab:red", linewidth=0.8, label="OFI 1 min")
    ofi_ax.set_ylabel("OFI (size units)")
    for ax in (spread_ax, obi_ax, ofi_ax):
        ax.axhline(0, color="grey", linewidth=0.5)
    titles = (
        "Mid price",
        "Bid-ask spread",
        "Order-book imbalance (bid - ask) / (bid + ask) size",
        "Order flow imbalance over trailing windows",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, loc="left", fontsize=10)
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
        ax.grid(alpha=0.3)
    _time_axis(ofi_ax)
    fig.suptitle(
        _title("Microstructure", scope, first, last)
        + (f" (means per {_describe_width(width)})" if width else f" ({count} snapshots)")
    )
    _save(fig, out)
    return f"{count} snapshots in {len(rows)} points"


# -- quality -----------------------------------------------------------------------------------


@_plain_text
def plot_quality(conn: psycopg.Connection, scope: quality.Scope, out: Path) -> str:
    import numpy as np

    plt = _matplotlib()
    first, last, count = _time_span(conn, scope)
    t_from, t_to = scope.bounds
    # shares per bucket need a few snapshots per bucket to mean anything
    width = _bucket_width(first, last, count, QUALITY_POINTS)
    time_expr = _bucketed("ts", width)
    series = _rows(
        conn,
        sql.SQL(
            "select {t}, avg(score), min(score), avg(crossed::int)::double precision,"
            " avg(locked::int)::double precision"
            " from quality.snapshot_scores(%s, %s, %s, %s) group by 1 order by 1"
        ).format(t=time_expr),
        (scope.gap, t_from, t_to, scope.symbol),
    )
    summary = _rows(
        conn,
        "select snapshots, crossed_share, locked_share, gaps, mean_score, min_score"
        " from quality.symbol_quality(%s, %s, %s, %s)",
        (scope.gap, t_from, t_to, scope.symbol),
    )[0]
    nulls = _rows(
        conn,
        "select side, level, null_rate from quality.symbol_level_nulls(%s, %s, %s)",
        (t_from, t_to, scope.symbol),
    )
    gaps = _rows(
        conn,
        "select gap_start, gap_end, gap_seconds from quality.gaps(%s, %s, %s, %s)"
        " order by gap_start",
        (scope.gap, t_from, t_to, scope.symbol),
    )
    files = _rows(
        conn,
        "select files.file_name || ' (#' || files.file_id || ')', reasons.reason, reasons.rows"
        " from ops.ingest_files as files"
        " left join quality.file_quarantine_reasons as reasons using (file_id)"
        " where files.file_id in (select file_id from ops.ingest_ranges"
        "   where symbol = %s and min_ts <= %s and max_ts >= %s)"
        " union all"
        " select file_name || ' (#' || file_id || ')', 'identical duplicate (skipped)',"
        "   rows_duplicate"
        " from ops.ingest_files where rows_duplicate > 0 and file_id in (select file_id"
        "   from ops.ingest_ranges where symbol = %s and min_ts <= %s and max_ts >= %s)"
        " order by 1, 2",
        (scope.symbol, t_to, t_from, scope.symbol, t_to, t_from),
    )

    fig = plt.figure(figsize=SIZES["quality"], dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=(1.7, 1))
    score_ax = fig.add_subplot(grid[0, 0])
    book_ax = fig.add_subplot(grid[1, 0], sharex=score_ax)
    gap_ax = fig.add_subplot(grid[2, 0], sharex=score_ax)
    null_ax = fig.add_subplot(grid[0:2, 1])
    file_ax = fig.add_subplot(grid[2, 1])

    times, (mean_score, min_score, crossed, locked) = _break_at_gaps(
        [r[0] for r in series], [[r[i] for r in series] for i in range(1, 5)], scope.gap, width
    )
    score_ax.plot(times, mean_score, color="tab:green", linewidth=1.0, label="mean score")
    if width:
        score_ax.plot(times, min_score, color="tab:red", linewidth=0.7, label="min score")
    score_ax.set_ylim(-0.02, 1.05)
    score_ax.set_ylabel("score (0..1)")
    book_ax.plot(times, 100 * crossed, color="tab:red", linewidth=0.9, label="crossed (bid > ask)")
    book_ax.plot(times, 100 * locked, color="tab:purple", linewidth=0.9, label="locked (bid = ask)")
    book_ax.set_ylabel("% of snapshots")
    book_ax.set_ylim(bottom=0, top=max(1.0, 100 * float(np.nanmax(np.r_[crossed, locked])) * 1.1))
    for start, end, _seconds in gaps:
        for ax in (score_ax, book_ax):
            ax.axvspan(start, end, color=GAP_COLOUR, alpha=0.35, linewidth=0)
    score_ax.axvspan(first, first, color=GAP_COLOUR, alpha=0.35, label="gap")
    threshold = scope.gap.total_seconds()
    label = f"gap (more than {threshold:g} s)"
    if len(gaps) > GAP_BARS:  # too many to show their widths: a stem at each start
        starts, lengths = [g[0] for g in gaps], [g[2] for g in gaps]
        gap_ax.vlines(starts, 0, lengths, color=GAP_COLOUR, linewidth=0.8)
        gap_ax.plot(starts, lengths, "o", color="#b07a10", markersize=2.5, label=label)
    elif gaps:
        gap_ax.bar(
            [g[0] for g in gaps],
            [g[2] for g in gaps],
            width=[g[1] - g[0] for g in gaps],
            align="edge",
            color=GAP_COLOUR,
            edgecolor="#b07a10",
            linewidth=0.5,
            label=label,
        )
    else:
        gap_ax.text(0.5, 0.5, "no gaps", transform=gap_ax.transAxes, ha="center", va="center")
    gap_ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8, label="threshold")
    gap_ax.set_ylim(bottom=0, top=max([threshold, *[g[2] for g in gaps]]) * 1.15)
    gap_ax.set_ylabel("gap length (s)")
    score_ax.set_xlim(first, last if last > first else first + timedelta(seconds=1))
    bucket_note = f"means per {_describe_width(width)}" if width else "per snapshot"
    for ax, title in (
        (score_ax, f"Snapshot quality score ({bucket_note})"),
        (book_ax, f"Crossed and locked books ({bucket_note})"),
        (gap_ax, f"Gaps between snapshots ({len(gaps)})"),
    ):
        ax.set_title(title, loc="left", fontsize=10)
        ax.legend(loc="lower left" if ax is score_ax else "upper right", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in (score_ax, book_ax):
        ax.tick_params(labelbottom=False)
    _time_axis(gap_ax)

    rates = {(side, level): rate for side, level, rate in nulls}
    levels = np.arange(1, 11)
    for offset, side, colour in ((-0.2, "bid", "tab:blue"), (0.2, "ask", "tab:red")):
        null_ax.bar(
            levels + offset,
            [100 * rates.get((side, int(i)), 0.0) for i in levels],
            width=0.4,
            color=colour,
            label=f"{side} side",
        )
    null_ax.set_xticks(levels)
    null_ax.set_xlabel("book level (1 = best)")
    null_ax.set_ylabel("% of snapshots with price or size NULL")
    null_ax.set_title("Missing levels", loc="left", fontsize=10)
    null_ax.legend(fontsize=8, loc="upper left")
    null_ax.grid(axis="y", alpha=0.3)

    _quarantine_bars(file_ax, files)

    snapshots, crossed_share, locked_share, n_gaps, mean, low = summary
    fig.suptitle(
        _title("Data quality", scope, first, last)
        + f"\n{snapshots} snapshots; mean score {mean:.4f}, min {low:.2f}; crossed "
        + f"{quality.fmt_pct(crossed_share)}, locked {quality.fmt_pct(locked_share)}; "
        + f"{n_gaps} gaps of more than {threshold:g} s"
    )
    _save(fig, out)
    return f"{snapshots} snapshots, {n_gaps} gaps, mean score {mean:.4f}"


def _quarantine_bars(ax: Any, files: list[tuple]) -> None:
    """One horizontal bar per file, stacked by reason, its total at the end."""
    from matplotlib.ticker import MaxNLocator

    names = sorted({f[0] for f in files})
    reasons = sorted({f[1] for f in files if f[1] is not None})
    ax.set_title("Rows quarantined or skipped, per file", loc="left", fontsize=10)
    if not reasons:
        ax.text(
            0.5,
            0.5,
            "no quarantined or duplicate rows" if names else "no files loaded this range",
            transform=ax.transAxes,
            ha="center",
            va="center",
        )
        ax.set_yticks([])
        ax.set_xticks([])
        return
    counts = {(f[0], f[1]): f[2] for f in files if f[1] is not None}
    left = [0] * len(names)
    cmap = _matplotlib().get_cmap("tab10")
    for k, reason in enumerate(reasons):
        values = [counts.get((name, reason), 0) for name in names]
        ax.barh(names, values, left=left, height=0.6, color=cmap(k % 10), label=reason)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for container in ax.containers[-1:]:
        ax.bar_label(container, labels=[str(v) for v in left], padding=3, fontsize=8)
    ax.set_xlim(0, max(left) * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rows")
    # files from the top, with room below them for the legend
    ax.set_ylim(len(names) - 0.5 + 0.35 * (len(reasons) + 1), -0.5)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)


# -- command -----------------------------------------------------------------------------------

PLOTS = {"heatmap": plot_heatmap, "microstructure": plot_microstructure, "quality": plot_quality}


def cmd_plot(args: argparse.Namespace) -> int:
    scope = quality.scope_from_args(args, symbol_required=True)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise TickfeaturesError(f"--out {args.out} must name a .png file")
    if not out.parent.is_dir():
        raise TickfeaturesError(f"--out {args.out}: directory {out.parent} does not exist")
    with quality.connect() as conn:
        quality.check_scope(conn, scope)
        detail = PLOTS[args.kind](conn, scope, out)
    print(f"wrote {out} ({args.kind}: {detail})", flush=True)
    return 0


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="draw a PNG: order-book heatmap, microstructure features or data quality",
        description="heatmap: resting size by time and price with the mid price; "
        "microstructure: mid, spread, imbalance and OFI from features.microstructure and "
        "features.ofi (build them with `tickfeatures refresh`); quality: score, crossed and "
        "locked books, gaps, missing levels and quarantined rows.",
    )
    p.add_argument("kind", choices=list(PLOTS))
    p.add_argument("--symbol", required=True)
    p.add_argument("--from", dest="t_from", metavar="T1", help="ISO-8601 start, inclusive (UTC)")
    p.add_argument("--to", dest="t_to", metavar="T2", help="ISO-8601 end, inclusive (UTC)")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument(
        "--gap",
        type=float,
        default=quality.GAP_DEFAULT,
        metavar="SECONDS",
        help=f"quality: gaps longer than this (default {quality.GAP_DEFAULT:g})",
    )
    p.set_defaults(func=cmd_plot)
