"""The command line: help everywhere, and one-line errors with non-zero exits."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import run_cli

SUBCOMMANDS = [
    ["db"],
    ["migrate"],
    ["generate"],
    ["load"],
    ["dbt"],
    ["refresh"],
    ["demo"],
    ["quality"],
    ["plot"],
    ["status"],
]


def test_top_level_help() -> None:
    result = run_cli("--help")
    for name in (
        "db", "migrate", "generate", "load", "dbt", "refresh", "demo", "quality", "plot", "status",
    ):  # fmt: skip
        assert name in result.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=lambda c: c[0])
def test_subcommand_help(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.stdout.startswith("usage: tickfeatures " + command[0])


def _assert_one_line_error(result, code: int) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == code, result
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("tickfeatures: error:")


@pytest.mark.parametrize(
    "args",
    [
        ["nosuchcommand"],
        ["db", "explode"],
        ["load", "l3", "x.csv"],
        ["generate", "l2"],  # neither --out nor --load
        ["generate", "l2", "--out", "x.csv", "--minutes", "many"],
    ],
    ids=lambda a: " ".join(a),
)
def test_wrong_arguments_exit_2_with_one_line(args: list[str]) -> None:
    _assert_one_line_error(run_cli(*args, check=False), 2)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("args", [["migrate"], ["migrate", "--status"], ["load", "l2", "x.csv"]])
def test_unreachable_database_is_one_line(args: list[str]) -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{_closed_port()}/nothing"
    result = run_cli(*args, dsn=dsn, check=False)
    _assert_one_line_error(result, 1)
    assert "cannot connect to" in result.stderr


def test_malformed_dsn_is_one_line() -> None:
    result = run_cli("migrate", dsn="postgresql://[bad", check=False)
    _assert_one_line_error(result, 1)


def test_db_url_follows_the_dsn() -> None:
    dsn = "postgresql://someone@db.example:5433/market"
    assert run_cli("db", "url", dsn=dsn).stdout.strip() == dsn


def test_db_env_exports_libpq_variables() -> None:
    out = run_cli("db", "env", dsn="postgresql://someone:pw@h:5433/market").stdout
    assert "export PGHOST='h'" in out
    assert "export PGPORT='5433'" in out
    assert "export PGDATABASE='market'" in out
    assert "export PGPASSWORD='pw'" in out


def test_bad_port_setting_is_one_line() -> None:
    result = run_cli("db", "url", env={"TICKFEATURES_PORT": "eleven"}, check=False)
    _assert_one_line_error(result, 1)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://tf:s3cr%40t@127.0.0.1:55432/tickfeatures", "postgresql://tf@127.0.0.1:55432/tickfeatures"),
        ("postgresql://tf@h/db?password=x&sslmode=require", "postgresql://tf@h/db?sslmode=require"),
        ("host=h user=tf password='a b\\' c' dbname=db", "host=h user=tf dbname=db"),
        ("host=h password=pw dbname=db", "host=h dbname=db"),
    ],
)  # fmt: skip
def test_status_shows_the_database_without_its_password(url: str, shown: str) -> None:
    from tickfeatures.db import redact

    assert redact(url) == shown


def test_status_of_an_unreachable_database_is_one_line() -> None:
    dsn = f"postgresql://nobody:pw@127.0.0.1:{_closed_port()}/nothing"
    result = run_cli("status", dsn=dsn, check=False)
    _assert_one_line_error(result, 1)
    assert result.stdout.startswith("database\n  postgresql://nobody@127.0.0.1:")
