"""Hostile values at every door of the CLI and the Python API (issue 17, item 5).

Each value below goes to each place a user's text reaches SQL: symbols (quality, plot, latest
vectors, events), `--map` names, feature selectors, families and names of the registry,
schedule intervals, file names, events' columns and the events table of the SQL function.
Each call must end in a one-line error (exit 1 or 2, no traceback) or treat the value as a
harmless literal, and leave every table as it was: the same relations in market, features and
ops, the same rows in them.

The command line cannot carry a NUL byte (the OS ends an argument there) nor an argument over
128 KiB (Linux's MAX_ARG_STRLEN): those two go through the Python API and the files only; the
CLI gets 100 KB.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest

import tickfeatures
from tests.conftest import FreshDatabase, run_cli
from tickfeatures import cli, config
from tickfeatures.errors import TickfeaturesError

pytestmark = pytest.mark.integration

DROP = "'; drop table market.l2_snapshots; --"
VALUES = {
    "quote": "'",
    "double_quote": '"',
    "semicolon": "a;b",
    "drop": DROP,
    "drop_identifier": '"; drop table market.l2_snapshots; --',
    "unicode": "Ωμέγα-ß-€-😀-\u202e",
    "percent": "%s %(x)s {}",
    "dollar": "$1 $$ $tf$",
    "backslash": "\\'\\",
    "newline": "a\nb",
    "like": "%_%",
    "long": "x" * 100_000,
}
API_VALUES = {**VALUES, "nul": "a\x00b", "megabyte": "y" * 1_000_000}
SYMBOL = "HOSTILE"


@pytest.fixture(scope="module")
def built(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("hostile")
    snapshots = tmp / "l2.csv"
    run_cli(
        "generate", "l2", "--symbols", SYMBOL, "--minutes", "2", "--seed", "5",
        "--start", "2026-03-02T14:00:00+00:00", "--out", str(snapshots),
    )  # fmt: skip
    url = databases.create("tf_hostile")
    run_cli("migrate", dsn=url)
    run_cli("load", "l2", str(snapshots), dsn=url)
    run_cli("refresh", "--select", "+l2_features", "+latest_l2_all", "feature_catalog", dsn=url)
    yield {"url": url, "tmp": tmp, "snapshots": snapshots}


def state(url: str) -> list[tuple]:
    """The relations of market, features and ops, and the rows of each table."""
    with psycopg.connect(url, autocommit=True) as conn:
        relations = conn.execute(
            """
            select n.nspname, c.relname, c.relkind::text
            from pg_class as c inner join pg_namespace as n on c.relnamespace = n.oid
            where n.nspname in ('market', 'features', 'ops') and c.relkind in ('r', 'v', 'p')
            order by 1, 2
            """
        ).fetchall()
        counts = []
        for schema, name, kind in relations:
            if kind == "r":
                row = conn.execute(
                    psycopg.sql.SQL("select count(*) from {}.{}").format(
                        psycopg.sql.Identifier(schema), psycopg.sql.Identifier(name)
                    )
                ).fetchone()
                counts.append((schema, name, row[0] if row else None))
    return relations + counts


def primary(error: BaseException) -> str:
    """An exception's message without the server's CONTEXT lines."""
    if isinstance(error, psycopg.Error) and error.diag.message_primary:
        return error.diag.message_primary
    return str(error)


def one_line_or_success(result) -> None:  # type: ignore[no-untyped-def]
    if result.returncode == 0:
        return
    assert result.returncode in (1, 2), result
    err = result.stderr.strip()
    assert "Traceback" not in err, err[-2000:]
    assert len(err.splitlines()) == 1, err[-2000:]
    assert err.startswith("tickfeatures"), err[:500]


def cli_cases(value: str, tmp: Path) -> list[list[str]]:
    out, events, parquet = str(tmp / "out.png"), str(tmp / "events.csv"), str(tmp / "t.parquet")
    return [
        ["quality", "--symbol", value],
        ["quality", "--file", value],
        ["plot", "heatmap", "--symbol", value, "--out", out],
        ["features", "show", value],
        ["features", "list", "--family", value],
        ["schedule", "every", value],
        ["training-set", events, "--features", value, "--out", parquet],
        ["training-set", events, "--features", "ofi_10s", "--max-age", value, "--out", parquet],
    ]  # fmt: skip


@pytest.mark.parametrize("name", list(VALUES))
def test_the_command_line(
    built: dict,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = VALUES[name]
    url = built["url"]
    with (tmp_path / "events.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["symbol", "ts", value if name != "long" else "note"])
        writer.writerow([value, "2026-03-02T14:01:00+00:00", value])
        writer.writerow([SYMBOL, "2026-03-02T14:01:30+00:00", "ok"])
    before = state(url)
    for args in cli_cases(value, tmp_path):
        one_line_or_success(run_cli(*args, dsn=url, check=False))
    # --map with the value as a source and as a destination column
    for mapping in (f"{value}=symbol", f"symbol={value}"):
        result = run_cli(
            "load", "l2", str(built["snapshots"]), "--map", mapping, dsn=url, check=False
        )
        one_line_or_success(result)
    # each option of a file's format (the file is loaded already: a valid option skips it, by
    # its checksum), through the CLI's main in this process: 9 process start-ups saved a value
    monkeypatch.setenv(config.DSN_ENV, url)
    for option in [
        *(
            [name, value]
            for name in ("--format", "--tz", "--ts-format", "--delimiter", "--symbol",
                         "--symbol-from-name", "--ts-field", "--columns")
        ),
        ["--no-header", "--columns", value],
    ]:  # fmt: skip
        capsys.readouterr()
        code = cli.main(["load", "l2", str(built["snapshots"]), "--no-progress", *option])
        err = capsys.readouterr().err.strip()
        assert code in (0, 1), (option, code, err)
        assert code == 0 or (len(err.splitlines()) == 1 and err.startswith("tickfeatures")), err
    assert state(url) == before


@pytest.mark.parametrize("name", [n for n in VALUES if n not in ("long", "newline", "backslash")])
def test_a_file_named_with_the_value_loads_under_that_name(
    built: dict, name: str, tmp_path: Path
) -> None:
    """The name is data: the ledger holds it as given."""
    safe = VALUES[name].replace("/", "_")
    path = tmp_path / f"{safe}.csv"
    rows = Path(built["snapshots"]).read_text().splitlines()
    # a file of its own (another checksum): the header and one snapshot a second later
    header, first = rows[0], rows[1].split(",")
    symbol_at = header.split(",").index("symbol")
    # a symbol per value (str hashes differ between processes: two could collide)
    first[symbol_at] = f"FILE{list(VALUES).index(name)}"
    path.write_text(header + "\n" + ",".join(first) + "\n")
    result = run_cli("load", "l2", str(path), "--no-progress", dsn=built["url"], check=False)
    one_line_or_success(result)
    with psycopg.connect(built["url"]) as conn:
        names = [r[0] for r in conn.execute("select file_name from ops.ingest_files").fetchall()]
        tables = conn.execute("select to_regclass('market.l2_snapshots') is not null").fetchone()
    assert path.name in names and tables == (True,)


@pytest.mark.parametrize("name", list(API_VALUES))
def test_the_python_api_and_sql_functions(built: dict, name: str) -> None:
    value = API_VALUES[name]
    url = built["url"]
    before = state(url)
    known = pd.DataFrame(
        {
            "symbol": [SYMBOL, SYMBOL],
            "ts": pd.to_datetime(["2026-03-02T14:01:00Z", "2026-03-02T14:01:30Z"], utc=True),
        }
    )
    errors = (TickfeaturesError, psycopg.Error, ValueError)
    with psycopg.connect(url) as conn:
        # a feature selector: no such feature, said in one line (LIKE's % and _ are literal)
        with pytest.raises(errors) as caught:
            tickfeatures.training_set(conn, known, [value])
        message = primary(caught.value)
        assert "unknown feature" in message or "NUL" in message or "0x00" in message, message
        conn.rollback()
        # a symbol of the events: never seen, and said so
        with pytest.raises(errors) as caught:
            tickfeatures.training_set(conn, known.assign(symbol=[value, SYMBOL]), ["ofi_10s"])
        message = primary(caught.value)
        assert "never seen" in message or "NUL" in message or "0x00" in message, message
        conn.rollback()
        # a column name of the events: kept as given (NUL: refused before SQL)
        column = value[:60] or "x"
        if "\x00" in value:
            with pytest.raises(errors):
                tickfeatures.training_set(conn, known.assign(**{column: 1}), ["ofi_10s"])
            conn.rollback()
        else:
            frame = tickfeatures.training_set(conn, known.assign(**{column: 1}), ["ofi_10s"])
            assert column in frame.columns and list(frame[column]) == [1, 1]
            assert frame["ofi_10s"].notna().all()
        # the latest vector and the SQL training set's events table, by name
        if "\x00" not in value:
            rows = conn.execute("select * from features.latest_l2(%s)", (value,)).fetchall()
            assert rows == []
            with pytest.raises(psycopg.Error) as sql_error:
                conn.execute("select features.training_set(%s, array['ofi_10s'])", (value,))
            assert sql_error.value.sqlstate in ("42P01", "42602", "22023", "3F000", "42704")
            conn.rollback()
        else:
            with pytest.raises((psycopg.DataError, ValueError)):
                conn.execute("select * from features.latest_l2(%s)", (value,))
            conn.rollback()
    assert state(url) == before


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("select * from features.latest_l2(null)", None),
        ("select * from features.latest_l2('')", None),
        ("select features.training_set(null, null)", "events <NULL>: no column symbol"),
        ("select features.training_set('pg_class', array[]::text[])", "events pg_class: no column"),
        ("select features.resolve_features(null)", "no features asked for"),
        ("select features.resolve_features(array[]::text[])", "no features asked for"),
        ("select features.resolve_features(array[null]::text[])", "unknown feature '<NULL>'"),
        ("select features.training_set_sql(null, array['ofi_10s'], null)", "events <NULL>"),
    ],
)
def test_the_serving_functions_take_nulls_and_empties(
    built: dict, query: str, message: str | None
) -> None:
    """NULL and empty arguments: no row, or a one-line error naming what is wrong."""
    before = state(built["url"])
    with psycopg.connect(built["url"], autocommit=True) as conn:
        if message is None:
            assert conn.execute(query).fetchall() == []
        else:
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(query)
            assert message in primary(caught.value) and "\n" not in primary(caught.value)
    assert state(built["url"]) == before
