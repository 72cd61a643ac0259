-- A full rebuild's swap (ops.replace_relation, migration 0014) could deadlock with a reader:
-- the swap locks the views on the rebuilt relation from the outermost in, then the relation,
-- but a query that reads the relation directly as well as through a view (features.latest_l2
-- reads each family's newest ts directly and its row through features.l2_features) may lock
-- the relation first and the view after. PostgreSQL then cancelled one of the two, in a
-- reader's test the reader ("deadlock detected"). The swap now takes its locks with a short
-- lock_timeout, in a subtransaction it retries, so it never waits long while holding a lock
-- a reader waits for: the reader waits a few milliseconds and never sees an error.

create or replace function ops.replace_relation(p_target regclass, p_replacement regclass)
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
    saved_timeout text := current_setting('lock_timeout');
    wait_ms integer;
    give_up timestamptz;
    bounded boolean;
    attempts integer := 0;
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

    -- The lock phase (the views' replacement and both renames) waits at most wait_ms for
    -- each lock, in a subtransaction retried until it gets them all. A reader's query can lock
    -- the target (a family table it also reads directly, as features.latest_l2 does) before
    -- a view on it that this phase has already locked: waiting for the target then would be
    -- a deadlock, and PostgreSQL would cancel one of the two after deadlock_timeout, often
    -- the reader. Giving up well before deadlock_timeout releases what this phase holds,
    -- so the reader goes on and the next attempt finds the target free. After 30 s of
    -- attempts the locks are waited for without a bound, as before.
    wait_ms := greatest(1, least(
        50,
        (extract(epoch from current_setting('deadlock_timeout')::interval) * 1000 / 10)::integer
    ));
    give_up := clock_timestamp() + interval '30 seconds';
    loop
        bounded := clock_timestamp() < give_up;
        begin
            if bounded then
                perform set_config('lock_timeout', wait_ms || 'ms', true);
            end if;
            recreate := '{}';
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

            perform set_config('lock_timeout', saved_timeout, true);
            exit;
        exception when lock_not_available then
            if not bounded then
                raise;
            end if;
            attempts := attempts + 1;
            perform pg_sleep(least(0.2, 0.005 * attempts) * (0.5 + random()));
        end;
    end loop;

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
    'relation, and none is cancelled by a deadlock (the locks are taken with a short '
    'lock_timeout, retried).';
