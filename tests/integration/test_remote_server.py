"""$TICKFEATURES_DSN: migrate, load and the dbt build all use that server.

"Another server" here is a second PostgreSQL cluster with the extensions, started on its own
port from a throwaway directory: nothing of the project's embedded cluster is involved.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.conftest import run_cli
from tickfeatures import config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_everything_goes_to_the_dsn_server(
    project: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _root, env = project
    run_cli("db", "start", env=env)
    other = run_cli("db", "url", env=env).stdout.strip()
    assert f":{env['TICKFEATURES_PORT']}/" in other

    run_cli("migrate", dsn=other, env={"TICKFEATURES_HOME": ""})
    sample = tmp_path_factory.mktemp("remote") / "sample.csv.gz"
    run_cli("generate", "l2", "--minutes", "1", "--seed", "3", "--out", str(sample))
    loaded = run_cli("load", "l2", str(sample), dsn=other)
    assert "loaded sample.csv.gz" in loaded.stdout
    build = run_cli(
        "dbt",
        "build",
        "--select",
        "+microstructure",
        "--target-path",
        str(tmp_path_factory.mktemp("dbt-target")),
        dsn=other,
    )
    assert "Completed successfully" in build.stdout

    with psycopg.connect(other) as conn:
        assert conn.execute("select current_setting('port')").fetchone() == (
            env["TICKFEATURES_PORT"],
        )
        snapshots = conn.execute("select count(*) from market.l2_snapshots").fetchone()
        features = conn.execute("select count(*) from features.microstructure").fetchone()
        files = conn.execute("select file_name, status from ops.ingest_files").fetchall()
        extensions = {r[0] for r in conn.execute("select extname from pg_extension")}
    assert snapshots is not None and snapshots[0] > 500
    assert features == snapshots
    assert files == [("sample.csv.gz", "loaded")]
    # The cron extension lives in the database cron.database_name names, as on a real server.
    assert {"timescaledb", "plpython3u", "pg_cron"} <= extensions
    assert config.DSN_ENV not in env or env[config.DSN_ENV] == ""
