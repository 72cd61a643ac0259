-- What a refresh must recompute, whatever wrote the raw rows, and full rebuilds that never
-- leave a reader without a relation.
--
-- 1. Invalidation log. Triggers on market.l2_snapshots and market.bars_1m log the symbol
--    and time range of the rows every write inserts, updates or deletes, with the writing
--    transaction's id (as TimescaleDB's continuous aggregates log invalidations): the
--    loader, a live collector's INSERTs and a hand-typed COPY alike. Each incremental model
--    keeps, in ops.refresh_state, the snapshot of the log it has processed: the entries
--    whose transaction that snapshot does not see are new to it, and its next refresh
--    recomputes each of their symbols from the earliest timestamp they touch (macros/incremental/refresh_begin.sql). This replaces the
--    per-file bookkeeping of 0004 (ops.refresh_files), which saw only the loader's files.
--
-- 2. ops.replace_relation(target, replacement): swaps a rebuilt relation in for the old
--    one in the caller's transaction while keeping every view that reads it, so a full
--    rebuild never drops features.l2_features or a user's own view (the project's
--    materializations call it; macros/materializations/).

create table ops.invalidations (
    invalidation_id bigint generated always as identity primary key,
    kind text not null check (kind in ('l2', 'bars')),
    symbol text not null,
    min_ts timestamptz not null,
    max_ts timestamptz not null,
    rows bigint not null,
    xid xid8 not null default pg_current_xact_id(),
    logged_at timestamptz not null default now()
);
create index invalidations_xid on ops.invalidations (xid);
comment on table ops.invalidations is
    'Rows written to market.l2_snapshots (kind l2) or market.bars_1m (kind bars): the symbol, '
    'time range and count of the rows a write inserted, updated or deleted (one entry per '
    'inserted row, per loaded file and symbol, or per update or delete statement and symbol) '
    'and the writing transaction. Pruned once every model of the kind has processed it.';

create table ops.refresh_state (
    model text primary key,
    kind text not null check (kind in ('l2', 'bars')),
    seen pg_snapshot not null,
    refreshed_at timestamptz not null default now()
);
comment on table ops.refresh_state is
    'Per incremental model: the snapshot of ops.invalidations its last run processed; an '
    'entry whose xid this snapshot does not see is pending for the model.';
comment on column ops.refresh_state.seen is
    'pg_current_snapshot() when the run began, or for a model that reads another model '
    'instead of the raw rows, that model''s own seen';

-- Inserted rows: a row-level trigger, so that the loader, which logs one entry per file
-- and symbol itself in the same transaction, skips it for the cost of a WHEN test
-- (`set local tickfeatures.logged_by = 'loader'`); a statement-level trigger with a
-- transition table would cost every COPY about 1 us a row, 10-20% of a load. Any other
-- insert logs one entry per row. TG_ARGV[0] is the kind.
create function ops.log_inserted_row() returns trigger
language plpgsql
as $$
begin
    insert into ops.invalidations (kind, symbol, min_ts, max_ts, rows)
    values (tg_argv[0], new.symbol, new.ts, new.ts, 1);
    return null;
end
$$;

-- Updated and deleted rows (rare): one entry per statement and symbol, from the transition
-- tables; an update invalidates where a row was and where it is now.
create function ops.log_changed_rows() returns trigger
language plpgsql
set search_path = pg_catalog
as $$
begin
    if tg_op = 'DELETE' then
        insert into ops.invalidations (kind, symbol, min_ts, max_ts, rows)
        select tg_argv[0], old_rows.symbol, min(old_rows.ts), max(old_rows.ts), count(*)
        from old_rows
        group by old_rows.symbol;
    else
        insert into ops.invalidations (kind, symbol, min_ts, max_ts, rows)
        select
            tg_argv[0], touched.symbol, min(touched.ts), max(touched.ts),
            count(*) filter (where touched.is_new)
        from (
            select old_rows.symbol, old_rows.ts, false as is_new from old_rows
            union all
            select new_rows.symbol, new_rows.ts, true from new_rows
        ) as touched
        group by touched.symbol;
    end if;
    return null;
end
$$;

create trigger l2_snapshots_log_inserted after insert on market.l2_snapshots
    for each row when (current_setting('tickfeatures.logged_by', true) is distinct from 'loader')
    execute function ops.log_inserted_row('l2');
create trigger l2_snapshots_log_updated after update on market.l2_snapshots
    referencing old table as old_rows new table as new_rows
    for each statement execute function ops.log_changed_rows('l2');
create trigger l2_snapshots_log_deleted after delete on market.l2_snapshots
    referencing old table as old_rows
    for each statement execute function ops.log_changed_rows('l2');

create trigger bars_1m_log_inserted after insert on market.bars_1m
    for each row when (current_setting('tickfeatures.logged_by', true) is distinct from 'loader')
    execute function ops.log_inserted_row('bars');
create trigger bars_1m_log_updated after update on market.bars_1m
    referencing old table as old_rows new table as new_rows
    for each statement execute function ops.log_changed_rows('bars');
create trigger bars_1m_log_deleted after delete on market.bars_1m
    referencing old table as old_rows
    for each statement execute function ops.log_changed_rows('bars');

-- Databases refreshed under 0004's bookkeeping: what a model had not processed yet becomes
-- pending through the log. Every model that has run gets a state taken now, which does not
-- see this migration's own entries: files loaded before it, that some model had not
-- processed, are recomputed once by every model (the same values again for those that had).
insert into ops.invalidations (kind, symbol, min_ts, max_ts, rows)
select files.kind, ranges.symbol, ranges.min_ts, ranges.max_ts, ranges.rows_loaded
from ops.ingest_ranges as ranges
inner join ops.ingest_files as files on ranges.file_id = files.file_id
where
    files.status in ('loaded', 'salvaged')
    and exists (
        select from (select distinct runs.model from ops.refresh_runs as runs) as models
        where not exists (
            select from ops.refresh_files as done
            where done.model = models.model and done.file_id = files.file_id
        )
    );

-- A refresh reads only the symbols with entries. Rows written without the loader before this
-- migration have none: every symbol's newest snapshot becomes an entry, so that each model
-- takes every symbol up from its own newest row, as it did before.
with recursive symbols as (
    (select first_row.symbol from market.l2_snapshots as first_row order by first_row.symbol limit 1)
    union all
    select (
        select next_row.symbol from market.l2_snapshots as next_row
        where next_row.symbol > symbols.symbol
        order by next_row.symbol limit 1
    )
    from symbols
    where symbols.symbol is not null
)
insert into ops.invalidations (kind, symbol, min_ts, max_ts, rows)
select 'l2', symbols.symbol, newest.ts, newest.ts, 0
from symbols
cross join lateral (
    select max(snapshot.ts) as ts from market.l2_snapshots as snapshot
    where snapshot.symbol = symbols.symbol
) as newest
where symbols.symbol is not null and exists (select from ops.refresh_runs);

insert into ops.refresh_state (model, kind, seen)
select models.model, 'l2', pg_current_snapshot()
from (select distinct runs.model from ops.refresh_runs as runs) as models;

drop table ops.refresh_files;

comment on column ops.refresh_runs.window_start is
    'incremental runs: the earliest timestamp of the invalidations this run processed (late rows included)';

-- Full rebuilds ----------------------------------------------------------------------------
create function ops.replace_relation(p_target regclass, p_replacement regclass)
returns void
language plpgsql
set search_path = pg_catalog
as $$
declare
    target record;
    replacement record;
    dependent record;
    grant_row record;
    old_name name;
    recreate text[] := '{}';
    statement text;
begin
    -- One replacement at a time, so that two never wait on each other's views.
    perform pg_advisory_xact_lock(hashtextextended('tickfeatures:replace_relation', 0));
    select c.oid, c.relname, c.relkind, n.nspname into target
    from pg_class as c inner join pg_namespace as n on c.relnamespace = n.oid
    where c.oid = p_target;
    select c.oid, c.relname, c.relkind, n.nspname into replacement
    from pg_class as c inner join pg_namespace as n on c.relnamespace = n.oid
    where c.oid = p_replacement;
    if target.nspname <> replacement.nspname then
        raise exception 'ops.replace_relation: % and % are in different schemas', p_target, p_replacement;
    end if;

    -- The views on the target, at any depth. A query on a view locks the view, then the
    -- views and tables under it, so they are locked from the outermost in, before the
    -- target (locking the target first could deadlock with such a reader): each by replacing
    -- it with its own definition. Those that read the target directly are replaced again
    -- after the swap, when the same text resolves to the new relation.
    for dependent in
        with recursive above (oid, depth) as (
            select rule.ev_class, 1
            from pg_depend as dep
            inner join pg_rewrite as rule on dep.objid = rule.oid
            where
                dep.classid = 'pg_rewrite'::regclass
                and dep.refclassid = 'pg_class'::regclass
                and dep.refobjid = p_target
                and rule.ev_class <> p_target
            union
            select rule.ev_class, above.depth + 1
            from above
            inner join pg_depend as dep
                on dep.refobjid = above.oid
                and dep.classid = 'pg_rewrite'::regclass
                and dep.refclassid = 'pg_class'::regclass
            inner join pg_rewrite as rule on dep.objid = rule.oid
            where rule.ev_class <> above.oid
        )
        select
            v.oid,
            v.relkind,
            format('%I.%I', vn.nspname, v.relname) as qualified,
            pg_get_viewdef(v.oid) as definition,
            v.reloptions,
            max(above.depth) as depth,
            bool_or(above.depth = 1) as direct
        from above
        inner join pg_class as v on above.oid = v.oid
        inner join pg_namespace as vn on v.relnamespace = vn.oid
        group by v.oid, v.relkind, vn.nspname, v.relname, v.reloptions
        order by max(above.depth) desc, v.oid
    loop
        if dependent.relkind <> 'v' then
            if not dependent.direct then
                continue;  -- it reads a view that keeps its identity
            end if;
            raise exception 'ops.replace_relation: materialized view % reads %; drop it before rebuilding',
                dependent.qualified, p_target;
        end if;
        statement := format(
            'create or replace view %s%s as %s',
            dependent.qualified,
            case when dependent.reloptions is null then ''
                else format(' with (%s)', array_to_string(dependent.reloptions, ', ')) end,
            dependent.definition
        );
        execute statement;
        if dependent.direct then
            recreate := recreate || statement;
        end if;
    end loop;

    old_name := left(target.relname, 50) || '__tf_replaced';
    execute format(
        'alter %s %I.%I rename to %I',
        case target.relkind when 'v' then 'view' else 'table' end,
        target.nspname, target.relname, old_name
    );
    execute format(
        'alter %s %I.%I rename to %I',
        case replacement.relkind when 'v' then 'view' else 'table' end,
        replacement.nspname, replacement.relname, target.relname
    );

    -- the old relation's grants, on the new one
    for grant_row in
        select
            acl.privilege_type,
            acl.is_grantable,
            case when acl.grantee = 0 then 'public' else quote_ident(r.rolname) end as grantee
        from pg_class as c
        cross join lateral aclexplode(c.relacl) as acl
        left join pg_roles as r on acl.grantee = r.oid
        where c.oid = p_target and acl.grantee <> c.relowner
    loop
        execute format(
            'grant %s on %I.%I to %s%s',
            grant_row.privilege_type, target.nspname, target.relname, grant_row.grantee,
            case when grant_row.is_grantable then ' with grant option' else '' end
        );
    end loop;

    -- the same definitions now resolve to the new relation
    foreach statement in array recreate loop
        execute statement;
    end loop;

    execute format(
        'drop %s %I.%I',
        case target.relkind when 'v' then 'view' else 'table' end,
        target.nspname, old_name
    );
end
$$;
comment on function ops.replace_relation(regclass, regclass) is
    'Puts p_replacement in the place (schema and name) of p_target inside the caller''s '
    'transaction: the views reading p_target read p_replacement from then on, its grants '
    'carry over and p_target is dropped. Readers wait for the commit; none sees a missing '
    'relation.';
