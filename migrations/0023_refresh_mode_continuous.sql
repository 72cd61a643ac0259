-- A refresh run of a model that is a continuous aggregate (TimescaleDB's TSL edition:
-- bars_1m_l2, bars_30m, bars_60m) is neither a rebuild nor an incremental insert: TimescaleDB
-- materializes what its invalidation log holds. ops.refresh_runs says so.
alter table ops.refresh_runs drop constraint refresh_runs_mode_check;
alter table ops.refresh_runs add constraint refresh_runs_mode_check
    check (mode in ('full', 'incremental', 'continuous'));
