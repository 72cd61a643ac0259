-- Operations ledger: every input file, every quarantined row, every refresh.
create table ops.ingest_files (
    file_id bigint generated always as identity primary key,
    kind text not null check (kind in ('l2', 'bars')),
    file_name text not null,
    file_path text not null,
    checksum text not null,
    size_bytes bigint not null,
    status text not null check (status in ('loading', 'loaded', 'failed')),
    rows_in bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    rows_duplicate bigint,
    error text,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);
-- A file (by content) is loaded at most once per kind.
create unique index ingest_files_loaded_once
    on ops.ingest_files (kind, checksum) where status = 'loaded';

create table ops.quarantine (
    quarantine_id bigint generated always as identity primary key,
    file_id bigint not null references ops.ingest_files (file_id),
    line_no bigint,
    reason text not null,
    detail text,
    record jsonb not null,
    created_at timestamptz not null default now()
);
create index quarantine_file on ops.quarantine (file_id);

create table ops.refresh_runs (
    run_id bigint generated always as identity primary key,
    model text not null,
    window_start timestamptz,
    window_end timestamptz,
    rows bigint,
    status text not null default 'running'
        check (status in ('running', 'success', 'failed')),
    error text,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    duration_ms double precision
);
