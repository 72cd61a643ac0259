-- The quality views for a reader who may not read ops.* (../shared/DESIGN.md, Roles): the
-- quality functions (0013), which the views call and which read ops.ingest_files,
-- ops.ingest_ranges and ops.quarantine, run with their owner's rights (SECURITY DEFINER) and a
-- fixed search_path (their bodies name every relation with its schema). `tickfeatures roles
-- install` grants the reader SELECT on the views and EXECUTE stays with PUBLIC; what a caller
-- can learn through them is what the quality report shows, not the ops tables.
do $migration$
declare
    fn regprocedure;
begin
    for fn in
        select p.oid::regprocedure
        from pg_proc as p
        inner join pg_namespace as n on p.pronamespace = n.oid
        where n.nspname = 'quality' and p.prokind = 'f'
    loop
        execute format('alter function %s security definer set search_path = pg_catalog, pg_temp', fn);
    end loop;
end
$migration$;
