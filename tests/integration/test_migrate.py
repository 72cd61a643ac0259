"""Migrations: applied once each, in a transaction, with edited files refused."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, run_cli
from tickfeatures import migrate
from tickfeatures.errors import TickfeaturesError

pytestmark = pytest.mark.integration


def test_cli_migrate_creates_the_contract_schema(fresh_db: str) -> None:
    first = run_cli("migrate", dsn=fresh_db)
    assert "applied 0001_extensions.sql" in first.stdout
    assert run_cli("migrate", dsn=fresh_db).stdout.strip() == "database is up to date"
    status = run_cli("migrate", "--status", dsn=fresh_db).stdout
    assert status.count(" applied") == len(list((ROOT / "migrations").glob("*.sql")))
    with psycopg.connect(fresh_db) as conn:
        extensions = {r[0] for r in conn.execute("select extname from pg_extension")}
        assert {"timescaledb", "plpython3u"} <= extensions
        hypertables = {
            r[0]
            for r in conn.execute(
                "select hypertable_schema || '.' || hypertable_name"
                " from timescaledb_information.hypertables"
            )
        }
        assert hypertables == {"market.l2_snapshots", "market.bars_1m"}
        for table in ("ingest_files", "quarantine", "refresh_runs", "schema_migrations"):
            assert conn.execute("select to_regclass(%s)", (f"ops.{table}",)).fetchone() != (None,)
        keys = conn.execute(
            "select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint"
            " where contype = 'p' and connamespace = 'market'::regnamespace order by 1"
        ).fetchall()
        assert keys == [
            ("market.bars_1m", "PRIMARY KEY (symbol, ts)"),
            ("market.l2_snapshots", "PRIMARY KEY (symbol, ts)"),
        ]


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", target)
    return target


def test_edited_migration_is_refused(fresh_db: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert len(migrate.apply(conn, directory)) == len(list(directory.glob("*.sql")))
        edited = directory / "0003_ops.sql"
        edited.write_text(edited.read_text() + "\n-- an afterthought\n")
        with pytest.raises(
            TickfeaturesError, match=re.escape("0003_ops.sql was edited after it was applied")
        ):
            migrate.apply(conn, directory)
        states = {s.migration.path.name: s.state for s in migrate.status(conn, directory)}
        assert states["0003_ops.sql"].startswith("EDITED")
        assert states["0001_extensions.sql"] == "applied"


def test_failed_migration_rolls_back_and_can_be_rerun(fresh_db: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    bad = directory / "0099_broken.sql"
    bad.write_text("create table market.half_done (x int);\nselect no_such_function();\n")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        with pytest.raises(
            TickfeaturesError, match=re.escape("0099_broken.sql failed and was rolled back")
        ):
            migrate.apply(conn, directory)
        assert conn.execute("select to_regclass('market.half_done')").fetchone() == (None,)
        assert conn.execute(
            "select count(*) from ops.schema_migrations where version = 99"
        ).fetchone() == (0,)
        bad.write_text("create table market.half_done (x int);\n")
        assert [m.name for m in migrate.apply(conn, directory)] == ["broken"]


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_oops.sql").write_text("select 1;")
    with pytest.raises(TickfeaturesError, match=re.escape("not named NNNN_lowercase_name.sql")):
        migrate.discover(tmp_path)
