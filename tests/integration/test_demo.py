"""`tickfeatures demo` (what `make demo` runs) on a database that has never seen the project:
it generates and loads both kinds of sample data, builds everything, prints features and the
schedule's status, and exits 0. (A demo path nothing ran once broke on a new CLI option.)"""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import FreshDatabase, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_demo_on_a_new_database(databases: FreshDatabase) -> None:
    url = databases.create("tf_demo")
    result = run_cli("demo", "--minutes", "6", dsn=url)
    out = result.stdout
    for heading in (
        "features.microstructure:",
        "features.heavy_features",
        "Refresh inside the database",
        "Query them yourself",
    ):
        assert heading in out, out
    with psycopg.connect(url) as conn:
        snapshots, bars, with_spread = conn.execute(
            "select (select count(*) from market.l2_snapshots), count(*), count(spread)"
            " from market.bars_1m"
        ).fetchone()  # type: ignore[misc]
        assert snapshots > 1000 and bars > 1000 and with_spread == bars
        procedures = conn.execute("select count(*) from ops.refresh_procedures").fetchone()[0]  # type: ignore[index]
        assert procedures > 10
