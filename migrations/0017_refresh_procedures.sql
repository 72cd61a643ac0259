-- Refresh without dbt: `tickfeatures schedule install` compiles each incremental model (with
-- dbt, once) into a procedure features.refresh_<model>() that runs exactly the statements an
-- incremental `dbt run` of the model runs (its hooks, the model's SQL into a temporary
-- table, delete+insert), and lists them here in dependency order. `call
-- features.refresh()` runs them, each model in its own transaction, with no client process:
-- pg_cron calls it on a schedule (`tickfeatures schedule every 10s`).

create table ops.refresh_procedures (
    model text primary key,
    procedure text not null,
    position int not null default 0,
    depends_on text[] not null default '{}',
    checksum text not null,
    project_checksum text,
    installed_at timestamptz not null default now()
);
comment on table ops.refresh_procedures is
    'The compiled refresh procedure of each incremental model, in the order features.refresh() '
    'calls them (position); depends_on names the models it reads; checksum is the md5 of its '
    'statements, project_checksum that of the project''s model, macro and seed files when it '
    'was installed (a difference says the procedures are stale).';

alter table ops.refresh_runs drop constraint refresh_runs_status_check;
alter table ops.refresh_runs add constraint refresh_runs_status_check
    check (status in ('running', 'success', 'failed', 'skipped'));
alter table ops.refresh_runs add column via text not null default 'dbt'
    check (via in ('dbt', 'procedure'));
comment on column ops.refresh_runs.via is
    'dbt: `tickfeatures refresh` or dbt itself; procedure: call features.refresh()';
comment on column ops.refresh_runs.status is
    'success; failed (error says why; the next run retries); skipped (model refresh(): another '
    'refresh held the lock; a model: a model it reads failed in the same run)';
create index refresh_runs_model_run on ops.refresh_runs (model, run_id);

create schema if not exists features;

-- For `tickfeatures schedule status`: a model's newest row of one symbol (an index lookup).
create function ops.newest_row(p_model text, p_symbol text)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog
as $$
declare
    newest timestamptz;
begin
    if to_regclass(format('features.%I', p_model)) is null then
        return null;
    end if;
    execute format('select max(ts) from features.%I where symbol = $1', p_model)
        into newest using p_symbol;
    return newest;
end
$$;

create procedure features.refresh()
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
    end loop;
    insert into ops.refresh_runs (model, mode, status, error, started_at, finished_at, duration_ms, via)
    values ('refresh()', 'incremental', case when failed = '{}' then 'success' else 'failed' end,
        case when failed <> '{}' then 'failed or skipped: ' || array_to_string(failed, ', ') end,
        started, clock_timestamp(), 1000 * extract(epoch from clock_timestamp() - started), 'procedure');
    commit;
    perform pg_advisory_unlock(hashtextextended('tickfeatures:refresh', 0));
end
$$;
comment on procedure features.refresh() is
    'Refresh every incremental model with the procedures `tickfeatures schedule install` '
    'compiled, each in its own transaction, in dependency order; the same rows as '
    '`tickfeatures refresh`. Returns at once (logged as skipped) while another refresh runs; '
    'a failing model is logged with its error, the models reading it are skipped, and the '
    'next call retries.';
