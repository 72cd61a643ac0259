"""First loader: wide CSV files with a header (optionally gzip) into the raw hypertables.

Every data row of a file ends in exactly one of three places, counted in `ops.ingest_files`:
loaded into the hypertable, quarantined in `ops.quarantine` with a reason, or skipped as an
identical duplicate of a row already loaded. A file that cannot be read to its end (bad
gzip, a value COPY cannot parse) commits nothing and is marked failed with a one-line reason.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql

from tickfeatures import schema
from tickfeatures.errors import TickfeaturesError

CHUNK = 1 << 20


@dataclass(frozen=True)
class TableSpec:
    kind: str
    table: str
    columns: tuple[str, ...]
    price_columns: tuple[str, ...]
    size_columns: tuple[str, ...]


SPECS = {
    "l2": TableSpec(
        kind="l2",
        table="l2_snapshots",
        columns=schema.L2_COLUMNS,
        price_columns=tuple(c for c in schema.L2_LEVEL_COLUMNS if "_price_" in c),
        size_columns=tuple(c for c in schema.L2_LEVEL_COLUMNS if "_size_" in c),
    ),
    "bars": TableSpec(
        kind="bars",
        table="bars_1m",
        columns=schema.BAR_COLUMNS,
        price_columns=("open", "high", "low", "close"),
        size_columns=("volume",),
    ),
}


@dataclass
class FileResult:
    path: Path
    status: str  # loaded | skipped | failed
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    file_id: int | None = None


def file_checksum(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def read_header(path: Path) -> list[str]:
    with _open(path) as raw:
        first = raw.readline()
    text = first.decode("utf-8-sig", errors="replace")
    if not text.strip():
        return []
    return [name.strip() for name in next(csv.reader(io.StringIO(text)))]


ALIASES = {
    "ts": ("timestamp", "time", "datetime", "date_time", "ts_event", "snapshot_time"),
    "symbol": ("pair", "instrument", "ticker", "sym", "currency_pair"),
}


def _summarise(columns: list[str]) -> str:
    """'bid_price_1..10' for a whole family of levels, else the names."""
    out: list[str] = []
    seen: set[str] = set()
    for name in columns:
        stem, _, level = name.rpartition("_")
        family = [f"{stem}_{i}" for i in range(1, schema.LEVELS + 1)]
        if level.isdigit() and all(f in columns for f in family):
            if stem not in seen:
                out.append(f"{stem}_1..{schema.LEVELS}")
                seen.add(stem)
        else:
            out.append(name)
    return ", ".join(out)


def _near_matches(missing: list[str], header: list[str]) -> list[str]:
    spare = [h for h in header if h not in missing]
    hints: list[str] = []
    used: set[str] = set()
    for name in missing:
        aliases = [h for h in spare if h.lower() in ALIASES.get(name, ())]
        close = aliases or difflib.get_close_matches(name, spare, n=1, cutoff=0.75)
        if close and close[0] not in used:
            hints.append(f"{close[0]} (for {name}?)")
            used.add(close[0])
    return hints


def check_header(spec: TableSpec, header: list[str], path: Path) -> None:
    """One clear error listing the required columns that are missing and near matches."""
    if not header:
        raise TickfeaturesError(f"{path.name}: empty file, no header line")
    missing = [c for c in spec.columns if c not in header]
    if not missing:
        return
    hints = _near_matches(missing, header)
    near = f"; near matches in the file: {', '.join(hints)}" if hints else ""
    raise TickfeaturesError(f"{path.name}: missing required column(s) {_summarise(missing)}{near}")


def _column_type(spec: TableSpec, name: str) -> sql.Composable:
    if name == "symbol":
        return sql.SQL("text")
    if name == "ts":
        return sql.SQL("timestamptz")
    if name in spec.columns:
        return sql.SQL("double precision")
    return sql.SQL("text")  # an extra column: read, kept in a quarantined record, not loaded


def _staging_name(index: int) -> sql.Identifier:
    return sql.Identifier(f"_tf_extra_{index}")


def _copy_into_stage(
    cur: psycopg.Cursor,
    spec: TableSpec,
    header: list[str],
    path: Path,
    progress: Callable[[int], None] | None,
) -> None:
    stage_cols = [
        sql.Identifier(name) if name in spec.columns else _staging_name(i)
        for i, name in enumerate(header)
    ]
    cur.execute(
        sql.SQL("create temp table _tf_stage ({cols}, line_no bigserial) on commit drop").format(
            cols=sql.SQL(", ").join(
                sql.SQL("{} {}").format(ident, _column_type(spec, name))
                for ident, name in zip(stage_cols, header, strict=True)
            )
        )
    )
    copy_sql = sql.SQL("copy _tf_stage ({cols}) from stdin (format csv, header true)").format(
        cols=sql.SQL(", ").join(stage_cols)
    )
    with _open(path) as raw, cur.copy(copy_sql) as copy:
        while block := raw.read(CHUNK):
            copy.write(block)
            if progress:
                progress(len(block))


def _row(alias: str, columns: Iterable[str]) -> sql.Composable:
    return sql.SQL("row({})").format(sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns))


def _classify_and_insert(cur: psycopg.Cursor, spec: TableSpec, file_id: int) -> FileResult:
    """Set aside every row that must not be inserted, with its reason; insert the rest.

    `_tf_rejects` holds only the rows set aside, usually few, so the insert is an anti-join
    against a small table rather than a join of the whole file.
    """
    value_cols = [c for c in spec.columns if c not in ("symbol", "ts")]
    target = sql.Identifier("market", spec.table)
    reason = sql.SQL(
        "case when s.symbol is null or s.symbol = '' then 'missing symbol'"
        " when s.ts is null then 'missing timestamp'"
        " when least({sizes}) < 0 then 'negative size'"
        " when least({prices}) <= 0 then 'non-positive price' end"
    ).format(
        sizes=sql.SQL(", ").join(sql.Identifier("s", c) for c in spec.size_columns),
        prices=sql.SQL(", ").join(sql.Identifier("s", c) for c in spec.price_columns),
    )
    cur.execute(
        sql.SQL(
            "create temp table _tf_rejects on commit drop as"
            " select line_no, reason, null::text as detail from ("
            "  select s.line_no, {reason} as reason from _tf_stage as s"
            " ) as checked where reason is not null"
        ).format(reason=reason)
    )
    cur.execute("create unique index on _tf_rejects (line_no)")
    # Duplicates of a (symbol, ts) inside the file: the first valid occurrence wins.
    cur.execute(
        sql.SQL(
            "insert into _tf_rejects (line_no, reason, detail)"
            " with repeated as ("
            "  select s.symbol, s.ts from _tf_stage as s group by s.symbol, s.ts"
            "  having count(*) > 1"
            "), keyed as ("
            "  select s.*, row_number() over (partition by s.symbol, s.ts order by s.line_no) as rn"
            "  from _tf_stage as s join repeated using (symbol, ts)"
            "  where not exists (select from _tf_rejects as r where r.line_no = s.line_no)"
            ") select k.line_no,"
            "    case when {later_row} is not distinct from {first_row} then 'identical duplicate'"
            "    else 'conflicting duplicate of (symbol, ts) in the file' end,"
            "    'first occurrence at line ' || (first.line_no + 1)"
            "  from keyed as k join keyed as first"
            "    on first.symbol = k.symbol and first.ts = k.ts and first.rn = 1"
            "  where k.rn > 1"
        ).format(later_row=_row("k", value_cols), first_row=_row("first", value_cols))
    )
    # Rows whose (symbol, ts) is already stored, looked up within the file's time range.
    cur.execute(
        sql.SQL(
            "insert into _tf_rejects (line_no, reason)"
            " select s.line_no, case"
            "  when {staged} is not distinct from {existing} then 'identical duplicate'"
            "  else 'conflicting duplicate of an existing (symbol, ts)' end"
            " from _tf_stage as s join {target} as m on m.symbol = s.symbol and m.ts = s.ts"
            " where m.ts between (select min(ts) from _tf_stage)"
            "  and (select max(ts) from _tf_stage)"
            "  and not exists (select from _tf_rejects as r where r.line_no = s.line_no)"
        ).format(staged=_row("s", value_cols), existing=_row("m", value_cols), target=target)
    )
    cur.execute("analyze _tf_rejects")
    cur.execute(
        sql.SQL(
            "insert into {target} ({cols}) select {cols} from _tf_stage as s"
            " where not exists (select from _tf_rejects as r where r.line_no = s.line_no)"
        ).format(target=target, cols=sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns))
    )
    loaded = cur.rowcount
    # What this file added per symbol: an incremental refresh starts from min_ts.
    cur.execute(
        "insert into ops.ingest_ranges (file_id, symbol, min_ts, max_ts, rows_loaded)"
        " select %s, s.symbol, min(s.ts), max(s.ts), count(*) from _tf_stage as s"
        " where not exists (select from _tf_rejects as r where r.line_no = s.line_no)"
        " group by s.symbol",
        (file_id,),
    )
    cur.execute(
        "insert into ops.quarantine (file_id, line_no, reason, detail, record)"
        " select %s, s.line_no + 1, r.reason, r.detail, to_jsonb(s) - 'line_no'"
        " from _tf_rejects as r join _tf_stage as s using (line_no)"
        " where r.reason <> 'identical duplicate'",
        (file_id,),
    )
    cur.execute("select reason, count(*) from _tf_rejects group by reason")
    counts = dict(cur.fetchall())
    rows_in = cur.execute("select count(*) from _tf_stage").fetchone()[0]  # type: ignore[index]
    duplicates = counts.pop("identical duplicate", 0)
    quarantined = sum(counts.values())
    if rows_in != loaded + quarantined + duplicates:
        raise TickfeaturesError(
            f"row accounting failed: {rows_in} in != {loaded} loaded + {quarantined} "
            f"quarantined + {duplicates} duplicates"
        )
    return FileResult(
        path=Path(),
        status="loaded",
        rows_in=rows_in,
        rows_loaded=loaded,
        rows_quarantined=quarantined,
        rows_duplicate=duplicates,
        reasons=counts,
    )


def _describe_copy_error(exc: psycopg.Error, path: Path) -> str:
    diag = exc.diag
    message = (diag.message_primary or str(exc)).strip()
    context = (diag.context or "").strip().splitlines()
    where = ""
    if context:
        # e.g. 'COPY _tf_stage, line 7, column bid_price_3: "abc"'
        where = context[0].removeprefix("COPY _tf_stage, ").strip()
    return f"{path.name}: {where + ': ' if where else ''}{message}"


def load_file(
    conn: psycopg.Connection,
    kind: str,
    path: Path,
    progress: Callable[[int], None] | None = None,
) -> FileResult:
    spec = SPECS[kind]
    path = Path(path)
    if not path.is_file():
        return FileResult(path=path, status="failed", error=f"{path}: no such file")
    checksum, size = file_checksum(path)
    with conn.transaction():
        done = conn.execute(
            "select file_id from ops.ingest_files"
            " where kind = %s and checksum = %s and status = 'loaded'",
            (kind, checksum),
        ).fetchone()
        if done:
            return FileResult(
                path=path,
                status="skipped",
                file_id=done[0],
                error=f"already loaded as file {done[0]}",
            )
        file_id = conn.execute(
            "insert into ops.ingest_files"
            " (kind, file_name, file_path, checksum, size_bytes, status)"
            " values (%s, %s, %s, %s, %s, 'loading') returning file_id",
            (kind, path.name, str(path.resolve()), checksum, size),
        ).fetchone()[0]  # type: ignore[index]
    try:
        with conn.transaction(), conn.cursor() as cur:
            header = read_header(path)
            check_header(spec, header, path)
            _copy_into_stage(cur, spec, header, path, progress)
            result = _classify_and_insert(cur, spec, file_id)
            cur.execute(
                "update ops.ingest_files set status = 'loaded', rows_in = %s, rows_loaded = %s,"
                " rows_quarantined = %s, rows_duplicate = %s, finished_at = now()"
                " where file_id = %s",
                (
                    result.rows_in,
                    result.rows_loaded,
                    result.rows_quarantined,
                    result.rows_duplicate,
                    file_id,
                ),
            )
    except (TickfeaturesError, OSError, EOFError, gzip.BadGzipFile, psycopg.Error) as exc:
        if isinstance(exc, psycopg.Error):
            error = _describe_copy_error(exc, path)
        elif isinstance(exc, TickfeaturesError):
            error = str(exc)
        else:
            error = f"{path.name}: cannot read: {exc}"
        with conn.transaction():
            conn.execute(
                "update ops.ingest_files set status = 'failed', error = %s, finished_at = now()"
                " where file_id = %s",
                (error, file_id),
            )
        return FileResult(path=path, status="failed", error=error, file_id=file_id)
    result.path = path
    result.file_id = file_id
    return result
