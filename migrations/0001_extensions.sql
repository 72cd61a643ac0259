-- Extensions the engine runs on. pg_cron can only live in the database named by
-- cron.database_name, so other databases on the same server (a test run's, say) skip it.
create extension if not exists timescaledb;
create extension if not exists plpython3u;

do $$
begin
    if current_database() = current_setting('cron.database_name', true) then
        create extension if not exists pg_cron;
    else
        raise notice 'pg_cron not created in %: cron.database_name is %',
            current_database(), coalesce(current_setting('cron.database_name', true), 'unset');
    end if;
end
$$;

create schema if not exists market;
create schema if not exists ops;
