-- Whether a refresh run rebuilt the model or added to it.
alter table ops.refresh_runs add column mode text check (mode in ('full', 'incremental'));
comment on column ops.refresh_runs.window_start is
    'incremental runs: earliest timestamp added by the files this run processed (late rows included)';
comment on column ops.refresh_runs.rows is
    'full runs: rows in the model; incremental runs: rows at or after each symbol''s earliest new timestamp';
