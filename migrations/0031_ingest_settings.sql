-- The loader reads vendors' formats and takes options that change how a file is read
-- (--format, --tz, --price-scale, ...): each file's are kept beside its format, so a re-run
-- with other settings is visible in the ledger.
alter table ops.ingest_files add column settings jsonb;
comment on column ops.ingest_files.format is
    'the format the file was read in: csv, jsonl, parquet (the table''s own columns) or a'
    ' named vendor format (databento, tardis, histdata-ascii-m1, lobster, ...)';
comment on column ops.ingest_files.settings is
    'the format and every option of the load that changes how the file is read'
    ' ({"format": ..., "tz": ..., "price_scale": ..., ...})';
