"""`tickfeatures refresh` on the user's path: a database that has never seen the project gets
every relation the README names from `migrate`, `load` and `refresh` alone, later refreshes are
incremental, and a full rebuild keeps every relation queryable throughout.
"""

from __future__ import annotations

import re
import threading
import uuid

import psycopg
import pytest
from psycopg import sql

from tests.conftest import ROOT, FreshDatabase, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

README = (ROOT / "README.md").read_text()
FILE_EXTENSIONS = {"png", "csv", "gz", "jsonl", "parquet", "sql", "py", "json"}


def readme_relations() -> set[tuple[str, str]]:
    """(schema, name) of every relation or function the README names: `schema.name` anywhere,
    and the first column of the tables of "The features" (features) and "Data quality"
    (quality)."""
    named = {
        (m[1], m[2])
        for m in re.finditer(
            r"(?<![\w./-])(features|quality|reference|staging|market|ops|udf)\.([a-z_0-9]+)(?![\w<])",
            README,
        )
        if m[2] not in FILE_EXTENSIONS
    }
    for heading, schema in (("## The features", "features"), ("## Data quality", "quality")):
        section = README.split(heading, 1)[1].split("\n## ", 1)[0]
        named |= {(schema, m[1]) for m in re.finditer(r"^\| `([a-z_0-9]+)` \|", section, re.M)}
    return named


def missing(url: str, names: set[tuple[str, str]]) -> list[str]:
    with psycopg.connect(url) as conn:
        return sorted(
            f"{schema}.{name}"
            for schema, name in names
            if not conn.execute(
                "select exists (select from pg_class c join pg_namespace n"
                " on n.oid = c.relnamespace where n.nspname = %s and c.relname = %s)"
                " or exists (select from pg_proc p join pg_namespace n"
                " on n.oid = p.pronamespace where n.nspname = %s and p.proname = %s)",
                (schema, name, schema, name),
            ).fetchone()[0]  # type: ignore[index]
        )


def snapshot_keys_without_features(url: str) -> tuple[int, int, int]:
    """(snapshots, l2_features rows, snapshots with no l2_features row)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select (select count(*) from market.l2_snapshots),"
            " (select count(*) from features.l2_features),"
            " (select count(*) from market.l2_snapshots s where not exists ("
            "   select from features.l2_features f where f.symbol = s.symbol and f.ts = s.ts))"
        ).fetchone()  # type: ignore[return-value]


def test_the_readme_gives_a_new_database_these_three_commands() -> None:
    block = README.split("## Using an existing TimescaleDB server", 1)[1].split("```sh", 1)[1]
    commands = [
        line.split("tickfeatures ", 1)[1].split()[0:2]
        for line in block.split("```", 1)[0].splitlines()
        if "bin/tickfeatures " in line
    ]
    assert [c[0] for c in commands[:3]] == ["migrate", "load", "refresh"], commands


@pytest.fixture(scope="module")
def built(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A database that has never seen the project, through the README's commands only."""
    tmp = tmp_path_factory.mktemp("refresh")
    first, second = tmp / "day1.csv.gz", tmp / "day2.csv.gz"
    run_cli("generate", "l2", "--out", str(first), "--minutes", "6", "--seed", "1")
    run_cli(
        "generate", "l2", "--out", str(second), "--minutes", "2", "--seed", "2",
        "--start", "2026-01-05T09:06:00+00:00",
    )  # fmt: skip
    url = databases.create("tf_new_user")
    run_cli("migrate", dsn=url)
    run_cli("load", "l2", str(first), dsn=url)
    run_cli("refresh", dsn=url)
    after_first = {
        "missing": missing(url, readme_relations()),
        "keys": snapshot_keys_without_features(url),
    }
    run_cli("load", "l2", str(second), dsn=url)
    second_refresh = run_cli("refresh", dsn=url)
    return {"url": url, "first": after_first, "second_output": second_refresh.stdout}


def test_migrate_load_refresh_build_every_relation_the_readme_names(built: dict) -> None:
    assert len(readme_relations()) > 40
    assert built["first"]["missing"] == []
    snapshots, rows, without = built["first"]["keys"]
    assert snapshots > 5000
    assert (rows, without) == (snapshots, 0)


def test_a_second_file_and_refresh_are_incremental(built: dict) -> None:
    snapshots, rows, without = snapshot_keys_without_features(built["url"])
    assert snapshots > built["first"]["keys"][0]
    assert (rows, without) == (snapshots, 0)
    with psycopg.connect(built["url"]) as conn:
        modes = dict(
            conn.execute(
                "select distinct on (model) model, mode from ops.refresh_runs"
                " order by model, run_id desc"
            ).fetchall()
        )
    assert set(modes.values()) == {"incremental"}, modes
    assert {"microstructure", "flow", "l2_targets", "hht"} <= set(modes)
    assert "from 2026-01-05 09:06" in built["second_output"]


def test_refresh_on_a_database_that_is_not_migrated_says_so(fresh_db: str) -> None:
    result = run_cli("refresh", dsn=fresh_db, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tickfeatures migrate" in lines[0], result.stderr


READERS = {
    "l2_features": "select count(*) from features.l2_features where symbol = 'EURUSD'",
    "heavy_features": "select count(*) from features.heavy_features where symbol = 'GBPUSD'",
    "flow": "select count(*) from features.flow",
    "feature_catalog": "select count(*) from features.feature_catalog",
    "stg_l2_snapshots": "select count(*) from staging.stg_l2_snapshots",
    "symbols": "select count(*) from reference.symbols",
    "users_view": "select count(*) from public.my_flow_signal",
}


def test_a_full_refresh_keeps_every_relation_queryable_and_in_place(built: dict) -> None:
    url = built["url"]
    role = f"tf_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        # what a user adds on top: a view of their own, and a grant
        conn.execute(
            "create view public.my_flow_signal as select f.symbol, f.ts, f.flow_persistence,"
            " m.spread_bps from features.l2_features f join features.microstructure m"
            " using (symbol, ts) where f.flow_persistence > 0.5"
        )
        conn.execute(sql.SQL("create role {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("grant select on features.flow to {}").format(sql.Identifier(role)))
        expected = {q: conn.execute(q).fetchone()[0] for q in READERS.values()}  # type: ignore[index]
    stop = threading.Event()
    errors: list[str] = []
    reads = dict.fromkeys(READERS, 0)
    changed: list[str] = []

    def read(name: str, query: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    value = conn.execute(query).fetchone()[0]  # type: ignore[index]
                except psycopg.Error as exc:
                    errors.append(f"{name}: {str(exc).strip().splitlines()[0]}")
                    continue
                reads[name] += 1
                if value != expected[query]:
                    changed.append(f"{name}: {value} != {expected[query]}")

    threads = [threading.Thread(target=read, args=item) for item in READERS.items()]
    try:
        for thread in threads:
            thread.start()
        result = run_cli("refresh", "--full", dsn=url, check=False)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        with psycopg.connect(url, autocommit=True) as conn:
            granted = conn.execute(
                "select has_table_privilege(%s, 'features.flow', 'select')", (role,)
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
    assert result.returncode == 0, result.stderr
    assert "refresh: full" in result.stdout
    assert errors == []
    assert changed == [], changed[:5]
    assert all(n > 0 for n in reads.values()), reads
    assert granted
    assert missing(url, readme_relations()) == []
    assert missing(url, {("public", "my_flow_signal")}) == []


def test_every_write_is_logged_whatever_wrote_it(fresh_db: str, tmp_path_factory) -> None:
    """ops.invalidations: one entry per loaded file and symbol, per row inserted by anything
    else, per update or delete statement and symbol; a refresh prunes what it processed."""
    url = fresh_db
    path = tmp_path_factory.mktemp("log") / "f.csv"
    run_cli("generate", "l2", "--out", str(path), "--minutes", "1", "--seed", "7")
    run_cli("migrate", dsn=url)
    run_cli("load", "l2", str(path), dsn=url)

    def log() -> list[tuple]:
        with psycopg.connect(url) as conn:
            return conn.execute(
                "select symbol, min_ts, max_ts, rows from ops.invalidations"
                " order by invalidation_id"
            ).fetchall()

    with psycopg.connect(url) as conn:
        ranges = conn.execute(
            "select symbol, min(ts), max(ts), count(*) from market.l2_snapshots"
            " group by symbol order by symbol"
        ).fetchall()
    assert sorted(log()) == ranges  # the loader: one entry per symbol, no row trigger
    window = "symbol = 'EURUSD' and ts > '2026-01-05 09:00:10+00' and ts < '2026-01-05 09:00:31+00'"
    # a transaction of another session, older than the writes below and open through the
    # refresh (another test's build on the same server, in CI): it holds every snapshot's xmin
    # below their writers, which must not keep their entries from being pruned
    older = psycopg.connect(url)
    older.execute("select pg_current_xact_id()")
    with psycopg.connect(url) as conn:
        inserted = conn.execute(
            "insert into market.l2_snapshots (symbol, ts, bid_price_1, bid_size_1)"
            " values ('EURUSD', '2026-01-05 09:00:10.05+00', 1.1, 1),"
            " ('GBPUSD', '2026-01-05 09:00:20.05+00', 1.2, 1),"
            " ('XAUUSD', '2026-01-05 08:00:00+00', 2000, 1) returning symbol, ts"
        ).fetchall()
        with conn.cursor().copy("copy market.l2_snapshots (symbol, ts) from stdin") as copy:
            copy.write_row(("EURUSD", "2026-01-05 09:00:30.05+00"))
        copied = conn.execute(
            "select symbol, ts from market.l2_snapshots where bid_price_1 is null"
        ).fetchone()
        touched = conn.execute(
            f"select 'EURUSD', min(ts), max(ts), count(*) from market.l2_snapshots where {window}"
        ).fetchone()
        conn.execute(f"update market.l2_snapshots set bid_size_1 = 2 where {window}")
        conn.execute("delete from market.l2_snapshots where symbol = 'XAUUSD'")
    xau = inserted[2][1]
    assert log()[len(ranges) :] == [
        *[(symbol, ts, ts, 1) for symbol, ts in [*inserted, copied]],  # a row each
        touched,  # the update: its rows' range, where they were and are
        ("XAUUSD", xau, xau, 1),  # the delete
    ]
    assert touched[3] > 50
    try:
        run_cli("refresh", dsn=url)
    finally:
        older.close()
    assert log() == []


def test_flow_never_runs_ahead_of_the_state_it_continues_from(
    built: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """flow continues its EMAs from features.flow_ewm_state: refreshed alone, or after rows
    arrived between the two models' runs (as within one `call features.refresh()` under a
    live feed), it writes only the rows that have a state, never NULL EMAs, and takes up
    the rest once that model has them."""
    url = built["url"]
    tmp = tmp_path_factory.mktemp("ahead")
    files = []
    for i, start in enumerate(["2026-01-05T09:08:00+00:00", "2026-01-05T09:09:00+00:00"]):
        path = tmp / f"minute{i}.csv.gz"
        run_cli(
            "generate", "l2", "--out", str(path), "--minutes", "1", "--seed", str(30 + i),
            "--start", start,
        )  # fmt: skip
        files.append(path)

    def newest() -> dict[str, object]:
        with psycopg.connect(url) as conn:
            return {
                table: conn.execute(f"select max(ts) from {table}").fetchone()[0]  # type: ignore[index]
                for table in ("market.l2_snapshots", "features.flow_ewm_state", "features.flow")
            }

    before = newest()
    run_cli("load", "l2", str(files[0]), dsn=url)
    run_cli("refresh", "--select", "flow", dsn=url)  # its state is not refreshed
    assert newest()["features.flow"] == before["features.flow"]

    run_cli("refresh", "--select", "flow_ewm_state", dsn=url)
    run_cli("load", "l2", str(files[1]), dsn=url)  # after the state's run, before flow's
    run_cli("refresh", "--select", "flow", dsn=url)
    now = newest()
    assert now["features.flow"] == now["features.flow_ewm_state"] < now["market.l2_snapshots"]

    run_cli("refresh", dsn=url)
    snapshots, rows, without = snapshot_keys_without_features(url)
    assert (rows, without) == (snapshots, 0)
    with psycopg.connect(url) as conn:
        gaps = conn.execute(
            "select count(*) from features.flow as f join features.flow_ewm_state as s"
            " using (symbol, ts) where (f.flow_imbalance_ema_300 is null)"
            " <> (s.ewm_state[4] is null or s.ewm_state[8] is null or s.ewm_state[8] = 0)"
        ).fetchone()[0]  # type: ignore[index]
        assert gaps == 0
        assert newest()["features.flow"] == newest()["market.l2_snapshots"]


def test_a_table_that_no_longer_matches_its_model_stops_the_refresh(built: dict) -> None:
    """on_schema_change 'fail' (one catalog query per model, macros/materializations/
    incremental_columns.sql): a feature table whose columns drifted from its model is an
    error naming the column, nothing is inserted into it, and `--full` rebuilds it."""
    url = built["url"]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("select count(*) from features.flow").fetchone()[0]  # type: ignore[index]
        conn.execute("alter table features.flow add column my_extra double precision")
    result = run_cli("refresh", "--select", "flow", dsn=url, check=False)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "no longer match its model" in output, output[-2000:]
    assert "my_extra (table: double precision, model: absent)" in output, output[-2000:]
    assert "refresh failed" in result.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from features.flow").fetchone()[0] == rows  # type: ignore[index]

    run_cli("refresh", "--full", "--select", "flow", dsn=url)
    with psycopg.connect(url) as conn:
        columns = [
            column
            for (column,) in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'features' and table_name = 'flow'"
            )
        ]
    assert "my_extra" not in columns and "flow_imbalance_300" in columns
    snapshots, rows_now, without = snapshot_keys_without_features(url)
    assert (rows_now, without) == (snapshots, 0)


def test_a_refresh_session_lowers_its_own_cpu_priority_only(fresh_db: str) -> None:
    """udf.lower_priority (migration 0026), which every incremental model's pre-hook calls:
    raises the session's nice value, never lowers it, and refuses values outside 0..19."""
    run_cli("migrate", dsn=fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert conn.execute("select udf.lower_priority(10)").fetchone()[0] == 10  # type: ignore[index]
        assert conn.execute("select udf.lower_priority(3)").fetchone()[0] == 10  # type: ignore[index]
        with pytest.raises(psycopg.Error, match="0 to 19"):
            conn.execute("select udf.lower_priority(25)")
    with psycopg.connect(fresh_db, autocommit=True) as other:  # a new session: nice 0
        assert other.execute("select udf.lower_priority(0)").fetchone()[0] == 0  # type: ignore[index]
    hook = (ROOT / "macros" / "incremental" / "refresh_begin.sql").read_text()
    assert "select udf.lower_priority({{ nice }});" in hook
