-- The loader reads CSV, JSON lines and Parquet, can salvage the readable part of a broken
-- file, and counts crossed and locked books (loaded, flagged, never rejected).
alter table ops.ingest_files drop constraint ingest_files_status_check;
alter table ops.ingest_files add constraint ingest_files_status_check
    check (status in ('loading', 'loaded', 'salvaged', 'failed'));
alter table ops.ingest_files
    add column format text,
    add column rows_crossed bigint,
    add column rows_locked bigint;
comment on column ops.ingest_files.status is
    'loading; loaded; salvaged (--salvage: the readable part of a broken file is loaded, error'
    ' says where it broke); failed (nothing from the file is committed, error says why)';
comment on column ops.ingest_files.rows_in is
    'data rows read = rows_loaded + rows_quarantined + rows_duplicate';
comment on column ops.ingest_files.rows_crossed is
    'loaded l2 rows with bid_price_1 > ask_price_1';
comment on column ops.ingest_files.rows_locked is
    'loaded l2 rows with bid_price_1 = ask_price_1';

-- A file (by content) is loaded, or salvaged, at most once per kind.
drop index ops.ingest_files_loaded_once;
create unique index ingest_files_loaded_once
    on ops.ingest_files (kind, checksum) where status in ('loaded', 'salvaged');

-- TimescaleDB's default index on ts alone: every reader of market.l2_snapshots selects a
-- symbol and a time range, which the primary key (symbol, ts) serves, and chunks are pruned
-- by ts without it. Maintaining it cost 1.7 s of the 4.8 s a 1M-row binary COPY took
-- (docs/decisions.md), the largest single cost of loading.
drop index if exists market.l2_snapshots_ts_idx;
