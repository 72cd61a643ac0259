-- What each loaded file added, per symbol, and which files each incremental model has
-- processed: together they tell a refresh where to start, late rows included.
create table ops.ingest_ranges (
    file_id bigint not null references ops.ingest_files (file_id),
    symbol text not null,
    min_ts timestamptz not null,
    max_ts timestamptz not null,
    rows_loaded bigint not null,
    primary key (file_id, symbol)
);

create table ops.refresh_files (
    model text not null,
    file_id bigint not null references ops.ingest_files (file_id),
    refreshed_at timestamptz not null default now(),
    primary key (model, file_id)
);
