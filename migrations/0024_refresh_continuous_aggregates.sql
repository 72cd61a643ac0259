-- features.refresh() (migration 0017) also refreshes the models that are continuous
-- aggregates where TimescaleDB's TSL edition is loaded (bars_1m_l2, bars_30m, bars_60m): their
-- compiled procedures run the models' hooks only, and late rows older than an aggregate's
-- materialized part would otherwise wait for its policy's next run.
create or replace procedure features.refresh()
language plpgsql
as $$
declare
    step record;
    failed text[] := '{}';
    message text;
    started timestamptz := clock_timestamp();
    models int := 0;
begin
    -- One refresh at a time, whoever starts it: `tickfeatures refresh` holds the same lock
    -- while dbt runs. A run that finds it taken returns at once.
    if not pg_try_advisory_lock(hashtextextended('tickfeatures:refresh', 0)) then
        insert into ops.refresh_runs (model, mode, status, error, started_at, finished_at, duration_ms, via)
        values ('refresh()', 'incremental', 'skipped', 'another refresh was running',
            started, clock_timestamp(), 0, 'procedure');
        commit;
        return;
    end if;
    if not exists (select from ops.refresh_procedures) then
        perform pg_advisory_unlock(hashtextextended('tickfeatures:refresh', 0));
        raise exception using
            errcode = 'object_not_in_prerequisite_state',
            message = 'features.refresh: no refresh procedures are installed',
            hint = 'run `tickfeatures schedule install`';
    end if;
    for step in select * from ops.refresh_procedures order by position, model loop
        if step.depends_on && failed then
            failed := failed || step.model;
            insert into ops.refresh_runs (model, mode, status, error, started_at, finished_at, duration_ms, via)
            values (step.model, 'incremental', 'skipped', 'a model it reads failed: '
                || array_to_string(array(select unnest(step.depends_on) intersect select unnest(failed)), ', '),
                clock_timestamp(), clock_timestamp(), 0, 'procedure');
            commit;
            continue;
        end if;
        begin
            perform set_config('tickfeatures.refresh_via', 'procedure', true);
            -- the compiled statements' `drop table if exists` would notice every call
            perform set_config('client_min_messages', 'warning', true);
            execute format('call %s()', step.procedure);
            models := models + 1;
        exception when others then
            get stacked diagnostics message = message_text;
            failed := failed || step.model;
            insert into ops.refresh_runs (model, mode, status, error, started_at, finished_at, duration_ms, via)
            values (step.model, 'incremental', 'failed', message, clock_timestamp(), clock_timestamp(),
                null, 'procedure');
        end;
        commit;
        -- a continuous aggregate (TSL edition) ran its hooks only: TimescaleDB materializes what
        -- its invalidation log holds, outside any transaction block, before the models reading
        -- it run
        if not step.model = any(failed) and exists (
            select from timescaledb_information.continuous_aggregates
            where view_schema = 'features' and view_name = step.model
        ) then
            call refresh_continuous_aggregate(
                format('features.%I', step.model)::regclass, null, date_trunc('minute', now())
            );
            commit;
        end if;
    end loop;
    insert into ops.refresh_runs (model, mode, status, error, started_at, finished_at, duration_ms, via)
    values ('refresh()', 'incremental', case when failed = '{}' then 'success' else 'failed' end,
        case when failed <> '{}' then 'failed or skipped: ' || array_to_string(failed, ', ') end,
        started, clock_timestamp(), 1000 * extract(epoch from clock_timestamp() - started), 'procedure');
    commit;
    perform pg_advisory_unlock(hashtextextended('tickfeatures:refresh', 0));
end
$$;
