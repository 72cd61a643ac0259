"""`tickfeatures plot`: each kind writes a PNG of the promised size that is not blank, and
each way of asking for what is not there fails with one line.

Data: two minutes of generated snapshots of two symbols, the microstructure and OFI models
built with dbt, then a later GBPUSD file (after a 30 s gap, with quarantined rows) that is
not refreshed, so its range has snapshots but no features.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from matplotlib import image
from matplotlib.text import Text

from tests.conftest import ROOT, FreshDatabase, run_cli
from tickfeatures import generate, plot, quality
from tickfeatures.schema import L2_COLUMNS

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=2, seconds=30)
# (height, width) in pixels: the figure sizes of tickfeatures.plot at 100 dpi
SHAPES = {"heatmap": (650, 1200), "microstructure": (900, 1200), "quality": (900, 1400)}


def _write(path: Path, rows: list[tuple]) -> str:
    generate.write_csv(rows, L2_COLUMNS, path)
    return str(path)


@pytest.fixture(scope="module")
def db(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    url = databases.create()
    run_cli("migrate", dsn=url)
    tmp = tmp_path_factory.mktemp("plot")
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    first = list(
        generate.generate_l2([specs["EURUSD"], specs["GBPUSD"]], T0, timedelta(minutes=2), seed=3)
    )
    run_cli("load", "l2", _write(tmp / "first.csv", first), dsn=url)
    unbuilt = run_cli(
        "plot", "microstructure", "--symbol", "GBPUSD", "--out", str(tmp / "x.png"),
        dsn=url, check=False,
    )  # fmt: skip
    run_cli(
        "dbt", "build", "--select", "symbols", "microstructure", "ofi",
        "--exclude-resource-type", "test", "--target-path", str(tmp / "target"), dsn=url,
    )  # fmt: skip
    later = list(generate.generate_l2([specs["GBPUSD"]], LATER, timedelta(seconds=30), seed=4))
    bad = list(later[5])
    bad[L2_COLUMNS.index("ask_size_3")] = -2.0  # quarantined: negative size
    clash = list(later[6])
    clash[L2_COLUMNS.index("bid_size_1")] = 123.0  # quarantined: conflicting duplicate
    later += [later[3], tuple(clash)]  # and an identical duplicate
    later[5] = tuple(bad)
    run_cli("load", "l2", _write(tmp / "later.csv", later), dsn=url)
    return {"url": url, "unbuilt": unbuilt}


def _plot(db: dict, out: Path, kind: str, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
    return run_cli("plot", kind, *args, "--out", str(out), dsn=db["url"], check=check)


def _assert_picture(path: Path, kind: str) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(path)
    assert pixels.shape[:2] == SHAPES[kind]
    rgb = pixels[..., :3]
    not_white = (rgb < 0.95).any(axis=-1).mean()
    assert not_white > 0.05, f"{kind}: only {not_white:.1%} of the pixels are not white"
    assert rgb.std() > 0.1
    return rgb


@pytest.mark.parametrize("kind", ["heatmap", "microstructure", "quality"])
def test_each_plot_is_a_picture_of_the_promised_size(db: dict, tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"{kind}.png"
    end = (T0 + timedelta(minutes=2)).isoformat()
    result = _plot(db, out, kind, "--symbol", "GBPUSD", "--from", T0.isoformat(), "--to", end)
    assert result.stdout.startswith(f"wrote {out} ({kind}: ")
    assert result.stderr == ""
    _assert_picture(out, kind)


def test_heatmap_shows_bids_in_blue_and_asks_in_red(db: dict, tmp_path: Path) -> None:
    out = tmp_path / "heatmap.png"
    _plot(db, out, "heatmap", "--symbol", "EURUSD")
    rgb = _assert_picture(out, "heatmap")
    red, blue = rgb[..., 0], rgb[..., 2]
    assert (blue > red + 0.2).mean() > 0.03 and (red > blue + 0.2).mean() > 0.03


def test_quality_plot_over_the_whole_history_with_quarantined_rows(
    db: dict, tmp_path: Path
) -> None:
    out = tmp_path / "quality.png"
    result = _plot(db, out, "quality", "--symbol", "GBPUSD")
    assert "gaps" in result.stdout
    _assert_picture(out, "quality")


def _assert_one_line_error(result, message: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tickfeatures: error:"), result.stderr
    assert message in lines[0]


def test_microstructure_needs_the_features(db: dict, tmp_path: Path) -> None:
    _assert_one_line_error(db["unbuilt"], "run `tickfeatures refresh` first")
    # the later file was loaded after the build: snapshots, but no features yet
    out = tmp_path / "m.png"
    result = _plot(
        db, out, "microstructure", "--symbol", "GBPUSD", "--from", LATER.isoformat(), check=False
    )
    _assert_one_line_error(result, "no features for GBPUSD")
    assert "tickfeatures refresh" in result.stderr and not out.exists()


@pytest.mark.parametrize("kind", ["heatmap", "microstructure", "quality"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", "NOPE"], "unknown symbol 'NOPE'"),
        (["--symbol", "EURUSD", "--from", "2030-01-01"], "no snapshots in range"),
        (["--symbol", "EURUSD", "--to", "noon"], "is not an ISO-8601 time"),
    ],
    ids=["unknown-symbol", "empty-range", "bad-time"],
)
def test_errors_are_one_line(
    db: dict, tmp_path: Path, kind: str, args: list[str], message: str
) -> None:
    out = tmp_path / "x.png"
    _assert_one_line_error(_plot(db, out, kind, *args, check=False), message)
    assert not out.exists()


def test_out_must_be_a_png_in_an_existing_directory(db: dict, tmp_path: Path) -> None:
    for out, message in (
        (tmp_path / "x.jpg", "must name a .png file"),
        (tmp_path / "nowhere" / "x.png", "does not exist"),
    ):
        result = _plot(db, out, "quality", "--symbol", "EURUSD", check=False)
        _assert_one_line_error(result, message)


# -- text from the user is drawn as it is ------------------------------------------------------

# matplotlib reads `$...$` as mathematics: `$$; x` made it fail, `a$b$c` drew an italic b.
ODD_SYMBOLS = ("$$; x", "a$b$c")
ODD_FILE = "we$ird $$ name.csv"
TITLES = {
    "heatmap": "Order-book depth",
    "microstructure": "Microstructure",
    "quality": "Data quality",
}


@pytest.fixture(scope="module")
def odd_db(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two symbols with dollar signs, from a file with dollar signs in its name (one row
    quarantined, so the quality plot draws the file's bar); features.microstructure and
    features.ofi made from the snapshots by hand, with the columns the plot reads (what is
    checked here is the text, not the families)."""
    url = databases.create()
    run_cli("migrate", dsn=url)
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    rows = []
    for symbol, seed in zip(ODD_SYMBOLS, (5, 6), strict=True):
        made = generate.generate_l2([specs["EURUSD"]], T0, timedelta(minutes=1), seed=seed)
        rows += [(symbol, *row[1:]) for row in made]
    bad = list(rows[3])
    bad[L2_COLUMNS.index("bid_size_2")] = -1.0
    rows[3] = tuple(bad)
    run_cli("load", "l2", _write(tmp_path_factory.mktemp("odd") / ODD_FILE, rows), dsn=url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists features")
        conn.execute(
            "create table features.microstructure as select symbol, ts,"
            " (bid_price_1 + ask_price_1) / 2 as mid_price,"
            " 1e4 * (ask_price_1 - bid_price_1) / ((bid_price_1 + ask_price_1) / 2) as spread_bps,"
            " (bid_size_1 - ask_size_1) / (bid_size_1 + ask_size_1) as order_book_imbalance,"
            " (bid_size_2 - ask_size_2) / (bid_size_2 + ask_size_2) as order_book_imbalance_5"
            " from market.l2_snapshots"
        )
        conn.execute(
            "create table features.ofi as select symbol, ts, bid_size_1 - ask_size_1 as ofi_10s,"
            " bid_size_3 - ask_size_3 as ofi_1m from market.l2_snapshots"
        )
    return url


@pytest.mark.parametrize("kind", ["heatmap", "microstructure", "quality"])
@pytest.mark.parametrize("symbol", ODD_SYMBOLS)
def test_dollar_signs_in_a_symbol_are_plain_text(
    odd_db: str, tmp_path: Path, kind: str, symbol: str
) -> None:
    out = tmp_path / f"{kind}.png"
    result = run_cli("plot", kind, "--symbol", symbol, "--out", str(out), dsn=odd_db)
    assert result.stdout.startswith(f"wrote {out} ({kind}: ") and result.stderr == ""
    _assert_picture(out, kind)


@pytest.mark.parametrize("kind", ["heatmap", "microstructure", "quality"])
@pytest.mark.parametrize("symbol", ODD_SYMBOLS)
def test_titles_and_labels_show_the_symbol_and_file_literally(
    odd_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, symbol: str
) -> None:
    """The figure's text objects: the title holds the symbol as typed, the quality plot's
    file bars the file's name, and each is drawn as plain text (matplotlib's own check of
    whether a text is mathematics says no)."""
    drawn: list[Any] = []
    save = plot._save
    monkeypatch.setattr(plot, "_save", lambda fig, out: (drawn.append(fig), save(fig, out)))
    scope = quality.Scope(symbol, None, None, timedelta(seconds=5))
    with psycopg.connect(odd_db) as conn:
        conn.execute("set timezone = 'UTC'")
        plot.PLOTS[kind](conn, scope, tmp_path / "x.png")
    (fig,) = drawn
    texts = [t for t in fig.findobj(Text) if t.get_text()]
    for text in texts:
        assert text._preprocess_math(text.get_text()) == (text.get_text(), False), text
    titles = [t.get_text() for t in texts if t.get_text().startswith(f"{TITLES[kind]}: ")]
    assert len(titles) == 1 and titles[0].startswith(f"{TITLES[kind]}: {symbol}, 2026-01-05 ")
    if kind == "quality":
        assert f"{ODD_FILE} (#1)" in [t.get_text() for t in texts]


def test_an_output_path_the_os_refuses_is_one_line(db: dict, tmp_path: Path) -> None:
    out = tmp_path / ("p" * 300 + ".png")
    result = _plot(db, out, "heatmap", "--symbol", "EURUSD", check=False)
    _assert_one_line_error(result, "file name too long")
