-- Loads killed mid-file no longer leave ledger rows behind: the loader now writes a file's
-- ledger row inside the file's transaction, so the row goes with the rows when the
-- transaction does not commit (the process killed, the connection lost). Rows an earlier
-- loader left in 'loading' (it wrote that status in a transaction of its own, before the
-- file's) belong to loads that died long ago: they become 'interrupted', which is the truth,
-- and the next load of the same file takes the row over as it does a failed one.
alter table ops.ingest_files drop constraint ingest_files_status_check;
alter table ops.ingest_files add constraint ingest_files_status_check
    check (status in ('loading', 'loaded', 'salvaged', 'failed', 'interrupted'));

update ops.ingest_files
set
    status = 'interrupted',
    error = coalesce(
        error,
        'the load was interrupted (its process died) before it committed; nothing from the'
        || ' file is stored, and loading it again retries it under this row'
    )
where status = 'loading';

comment on column ops.ingest_files.status is
    'loading (only inside the loading transaction: never committed, never seen by another'
    ' session); loaded; salvaged (--salvage: the readable part of a broken file is loaded,'
    ' error says where it broke); failed (nothing from the file is committed, error says'
    ' why); interrupted (a load whose process died before it committed, left by a loader'
    ' from before migration 0015: nothing from the file is stored). A failed or interrupted'
    ' file is retried under the same row.';
