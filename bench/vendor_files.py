"""The bench's snapshots as a data vendor ships them: Databento MBP-10 as DBN (.dbn.zst) and as
the CSV Databento's own transcoder writes from it (.csv.gz), for `make bench`'s load figures.

The records are the wide file's books (the same 1M snapshots), with integer prices in units
of 1e-9, sizes in whole units (x 100), receive times in nanoseconds and F_LAST set on every
record. They are packed as DBN's C structs with numpy (1M records through Python objects
would take minutes), checked by Databento's own decoder on the first and the last record, and
transcoded to CSV by Databento's own Transcoder (raw prices, integer stamps, symbols mapped).
"""

from __future__ import annotations

import io
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tickfeatures.dbn import LAYOUTS  # noqa: E402

UNDEF = np.iinfo(np.int64).max


def databento_files(wide: Path, cache: Path, log=print) -> tuple[Path, Path]:
    """(MBP-10 CSV.gz, MBP-10 DBN.zst) of the wide CSV.gz's snapshots, cached."""
    import databento_dbn as d
    import zstandard
    from isal import igzip

    stem = wide.name.removesuffix(".csv.gz")
    csv_path, dbn_path = cache / f"{stem}.mbp-10.csv.gz", cache / f"{stem}.mbp-10.dbn.zst"
    if csv_path.exists() and dbn_path.exists():
        return csv_path, dbn_path
    log(f"writing {wide.name}'s snapshots as Databento MBP-10: {dbn_path.name}, {csv_path.name}")
    table = pacsv.read_csv(
        wide,
        convert_options=pacsv.ConvertOptions(
            column_types={"ts": pa.timestamp("us", "UTC"), "symbol": pa.string()}
        ),
    )
    n = table.num_rows
    names, ids = np.unique(np.asarray(table["symbol"].to_pylist()), return_inverse=True)
    ts_us = table["ts"].cast(pa.int64()).to_numpy()
    rec = np.zeros(n, dtype=LAYOUTS[0x0A][1])
    rec["length"] = rec.dtype.itemsize // 4
    rec["rtype"] = 0x0A
    rec["publisher_id"] = 2
    rec["instrument_id"] = ids + 1
    rec["ts_recv"] = ts_us * 1000 + 123  # rounds back to the same microsecond
    rec["ts_event"] = rec["ts_recv"] - 20_000
    rec["action"], rec["side"], rec["flags"] = b"A", b"B", 128
    for side in ("bid", "ask"):
        for level in range(10):
            price = table[f"{side}_price_{level + 1}"].to_numpy(zero_copy_only=False)
            size = table[f"{side}_size_{level + 1}"].to_numpy(zero_copy_only=False)
            empty = np.isnan(price)
            px = np.rint(np.nan_to_num(price) * 1e9).astype(np.int64)
            px[empty] = UNDEF
            rec[f"{side}_px_{level:02d}"] = px
            rec[f"{side}_sz_{level:02d}"] = np.where(empty, 0, np.rint(np.nan_to_num(size) * 100))
            rec[f"{side}_ct_{level:02d}"] = np.where(empty, 0, 1)
    rec["price"], rec["size"] = rec["bid_px_00"], rec["bid_sz_00"]
    day = (np.datetime64(int(ts_us.min()), "us").astype("datetime64[D]")).astype(object)
    metadata = d.Metadata(
        dataset="XNAS.ITCH",
        start=int(rec["ts_recv"].min()),
        end=int(rec["ts_recv"].max()) + 1,
        stype_in=d.SType.RAW_SYMBOL,
        stype_out=d.SType.INSTRUMENT_ID,
        schema=d.Schema.MBP_10,
        symbols=[str(s) for s in names],
        partial=[],
        not_found=[],
        mappings=[
            SimpleNamespace(
                raw_symbol=str(s),
                intervals=[
                    SimpleNamespace(
                        start_date=day, end_date=day + timedelta(days=3), symbol=str(i + 1)
                    )
                ],
            )
            for i, s in enumerate(names)
        ],
    ).encode()
    # Databento's decoder reads the packed records as they were meant
    decoder = d.DBNDecoder()
    decoder.write(metadata + rec[:1].tobytes() + rec[-1:].tobytes())
    decoded = decoder.decode()[1:]
    for got, want in zip(decoded, (rec[0], rec[-1]), strict=True):
        assert (got.ts_recv, got.instrument_id, got.flags) == (
            int(want["ts_recv"]),
            int(want["instrument_id"]),
            128,
        )
        assert (got.levels[9].ask_px, got.levels[9].bid_sz) == (
            int(want["ask_px_09"]),
            int(want["bid_sz_09"]),
        )
    dbn = metadata + rec.tobytes()
    cache.mkdir(parents=True, exist_ok=True)
    dbn_path.write_bytes(zstandard.ZstdCompressor(level=3).compress(dbn))
    out = io.BytesIO()
    transcoder = d.Transcoder(
        out, d.Encoding.CSV, d.Compression.NONE, pretty_px=False, pretty_ts=False, map_symbols=True
    )
    transcoder.write(dbn)
    transcoder.flush()
    csv_path.write_bytes(igzip.compress(out.getvalue(), compresslevel=3))
    return csv_path, dbn_path


if __name__ == "__main__":
    print(databento_files(Path(sys.argv[1]), Path(sys.argv[2])))
