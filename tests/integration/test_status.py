"""`tickfeatures status`: one plain-text section per topic, from the database itself."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.conftest import ROOT, FreshDatabase, run_cli
from tickfeatures import migrate

pytestmark = pytest.mark.integration


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    title = ""
    for line in text.splitlines():
        if line and not line.startswith(" "):
            title = line
            out[title] = []
        elif line.strip():
            out[title].append(line.strip())
    return out


def test_status_sections(databases: FreshDatabase, tmp_path: Path) -> None:
    url = databases.create()
    empty = _sections(run_cli("status", dsn=url).stdout)
    on_disk = migrate.discover(ROOT / "migrations")
    assert empty["migrations"][0].startswith(f"0 applied, {len(on_disk)} pending")
    assert empty["files (ops.ingest_files)"] == ["no ingest ledger (run `tickfeatures migrate`)"]

    run_cli("migrate", dsn=url)
    good = tmp_path / "day.csv"
    run_cli("generate", "l2", "--out", str(good), "--minutes", "1", "--seed", "2")
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(good.read_bytes())[:-40])
    run_cli("generate", "bars", "--load", "--days", "1", "--symbols", "EURUSD", dsn=url)
    run_cli("load", "l2", str(good), str(broken), dsn=url, check=False)
    with psycopg.connect(url) as conn:
        snapshots, symbols = conn.execute(
            "select count(*), count(distinct symbol) from market.l2_snapshots"
        ).fetchone()  # type: ignore[misc]
        bars = conn.execute("select count(*) from market.bars_1m").fetchone()[0]  # type: ignore[index]
        quarantined = conn.execute(
            "select sum(rows_quarantined) from ops.ingest_files where status = 'loaded'"
        ).fetchone()[0]  # type: ignore[index]

    result = run_cli("status", dsn=url)
    secret = conninfo_to_dict(url).get("password")  # the embedded cluster's, for one
    assert not secret or str(secret) not in result.stdout
    shown = _sections(result.stdout)
    titles = ["database", "server", "migrations", "files (ops.ingest_files)", "data"]
    titles.append("latest ingest")
    assert [t for t in shown if t in titles] == titles  # in this order, among any others
    assert shown["database"][0].endswith("($TICKFEATURES_DSN)")
    assert shown["migrations"][0].startswith(f"{len(on_disk)} applied, 0 pending")
    assert "timescaledb" in shown["server"][0]
    files = {line.split()[0]: line for line in shown["files (ops.ingest_files)"]}
    assert list(files) == ["loaded", "salvaged", "failed", "interrupted"]
    assert files["loaded"].split()[1:3] == ["2", "files"]
    assert f"{snapshots + bars:,} rows loaded, {quarantined:,} quarantined" in files["loaded"]
    assert files["failed"].split()[1:3] == ["1", "file"]
    assert files["interrupted"].split()[1:3] == ["0", "files"]
    data = {line.split()[0]: line for line in shown["data"]}
    assert f"{snapshots:,} snapshots, {symbols} symbols" in data["market.l2_snapshots"]
    assert f"{bars:,} bars, 1 symbol" in data["market.bars_1m"]
    latest = shown["latest ingest"]
    assert re.match(r"broken\.csv\.gz \(l2, file \d+\): failed at 20\d\d-", latest[0])
    assert "truncated gzip" in latest[1]
    # features: never refreshed, then up to date, then a direct write waiting for a refresh
    assert shown["features (ops.refresh_state)"] == ["never refreshed (run `tickfeatures refresh`)"]
    run_cli("refresh", "--select", "microstructure", "ofi", dsn=url)
    refreshed = _sections(run_cli("status", dsn=url).stdout)["features (ops.refresh_state)"]
    assert [line.split()[0] for line in refreshed[:2]] == ["microstructure", "ofi"]
    assert all(line.endswith("up to date") for line in refreshed[:2]), refreshed
    assert refreshed[2].startswith("missing: features.l2_features, features.heavy_features")
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into market.l2_snapshots (symbol, ts) values"
            " ('EURUSD', '2026-01-05 09:00:00.5+00'), ('GBPUSD', '2026-01-05 09:00:00.6+00')"
        )
    waiting = _sections(run_cli("status", dsn=url).stdout)["features (ops.refresh_state)"]
    assert waiting[0].endswith("2 writes to process (2 symbols, from 2026-01-05 09:00:00 UTC)"), (
        waiting
    )
