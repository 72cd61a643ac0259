-- Point-in-time training sets (FEATURE_DEFINITIONS T-rules; issue "Serving features"): for
-- each event (symbol, ts, any other columns), every asked-for feature as it was known at ts.
--
-- One implementation behind three doors: features.training_set_sql writes the query, and
-- features.training_set (SQL clients), tickfeatures.training_set (Python) and
-- `tickfeatures training-set` (CLI) all run it.
--
-- Per model (table) of the asked features, the newest row of the event's symbol with
--   row.ts + available_after <= event.ts
-- (features.feature_catalog.available_after: 0 for snapshot rows, the targets and the heavy
-- windows stamped at their end; 1 minute for bars stamped with their open minute), found by
-- one backward index scan on (symbol, ts); its ts comes along as <model>_ts. With max_age, a
-- row known more than max_age before the event is not used (NULLs, like Feast's ttl).

-- The catalog rows a list asks for, in the order asked. Each item is
--   a feature's name (ofi_10s), a family's or model's name (ofi: all its features),
--   a glob over names (ofi_*, with * and ?), or
--   model.name, model.glob, model.* (realized_volatility.*: the columns of that model only).
-- A name that is both a feature's and a family's (realized_volatility: a column of volatility
-- and a bar family) is an error asking for the qualified form. Targets (family 'targets')
-- come only when named: by their name, their family or model, never from a bare glob.
create function features.resolve_features(p_features text[])
returns table (name text, model text, available_after interval)
language plpgsql
stable
as $$
declare
    v_item record;
    v_hint text;
begin
    if p_features is null or cardinality(p_features) = 0 then
        raise exception 'no features asked for: give names, families, models or globs such as ''ofi_*'''
            using errcode = '22023';
    end if;
    if to_regclass('features.feature_catalog') is null then
        raise exception 'features.feature_catalog does not exist: run `tickfeatures refresh` first'
            using errcode = '42P01';
    end if;
    for v_item in
        select asked.pattern,
            count(catalog.name) = 0 as unknown,
            bool_or(catalog.name = asked.pattern) and bool_or(catalog.name <> asked.pattern) as ambiguous,
            min(catalog.model) filter (where catalog.name = asked.pattern) as owner
        from unnest(p_features) with ordinality as asked (pattern, ord)
        left join features.feature_catalog as catalog
            on features._feature_matches(asked.pattern, catalog.name, catalog.model, catalog.family)
        group by asked.ord, asked.pattern
        order by asked.ord
    loop
        if v_item.unknown then
            select string_agg(near.name, ', ') into v_hint
            from (
                select catalog.name from features.feature_catalog as catalog
                where catalog.name like '%' || features._glob_to_like(lower(split_part(v_item.pattern, '.', -1))) || '%'
                order by length(catalog.name), catalog.name
                limit 3
            ) as near;
            raise exception 'unknown feature ''%''%', v_item.pattern,
                coalesce(' (did you mean ' || v_hint || '?)', ': features.feature_catalog lists every feature')
                using errcode = '22023';
        end if;
        if v_item.ambiguous then
            raise exception '''%'' is both a feature of % and a family: write %.% for the feature or %.* for the family',
                v_item.pattern, v_item.owner, v_item.owner, v_item.pattern, v_item.pattern
                using errcode = '22023';
        end if;
    end loop;
    return query
    select chosen.name, chosen.model, chosen.available_after
    from (
        select distinct on (catalog.name) catalog.name, catalog.model, catalog.available_after, asked.ord
        from unnest(p_features) with ordinality as asked (pattern, ord)
        join features.feature_catalog as catalog
            on features._feature_matches(asked.pattern, catalog.name, catalog.model, catalog.family)
        order by catalog.name, asked.ord
    ) as chosen
    order by chosen.ord, chosen.model, chosen.name;
end;
$$;

-- A glob (* any run, ? one character) as a LIKE pattern.
create function features._glob_to_like(p_glob text)
returns text
language sql
immutable
as $$
    select replace(replace(replace(replace(replace(p_glob, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_')
$$;

-- Whether one item of a feature list asks for the catalog row (name, model, family).
create function features._feature_matches(p_pattern text, p_name text, p_model text, p_family text)
returns boolean
language sql
immutable
as $$
    select case
        when p_pattern like '%.%' then
            split_part(p_pattern, '.', 1) in (p_model, p_family)
            and p_name like features._glob_to_like(substr(p_pattern, strpos(p_pattern, '.') + 1))
        when p_pattern ~ '[*?]' then
            p_family <> 'targets' and p_name like features._glob_to_like(p_pattern)
        else
            p_name = p_pattern or p_pattern in (p_model, p_family)
    end
$$;


-- The query of a training set: the events' columns, then per model <model>_ts and its
-- asked columns (in the table's column order). Checks the events first, each problem a
-- one-line error naming it.
create function features.training_set_sql(
    events regclass, features text[], max_age interval default null
)
returns text
language plpgsql
stable
as $$
declare
    v_ts_type text;
    v_symbol_type text;
    v_problem text;
    v_count bigint;
    v_model record;
    v_columns text;
    v_select text := 'events.*';
    v_joins text := '';
    v_bound text;
    v_clash text;
begin
    select format_type(attribute.atttypid, attribute.atttypmod) into v_ts_type
    from pg_attribute as attribute
    where attribute.attrelid = events and attribute.attname = 'ts'
        and attribute.attnum > 0 and not attribute.attisdropped;
    select format_type(attribute.atttypid, attribute.atttypmod) into v_symbol_type
    from pg_attribute as attribute
    where attribute.attrelid = events and attribute.attname = 'symbol'
        and attribute.attnum > 0 and not attribute.attisdropped;
    if v_symbol_type is null or v_ts_type is null then
        raise exception 'events %: no column %', events,
            case when v_symbol_type is null then 'symbol' else 'ts (the time each event is known, timestamptz)' end
            using errcode = '42703';
    end if;
    if v_ts_type <> 'timestamp with time zone' then
        raise exception 'events %: ts is %, not timestamp with time zone: say which zone its times are in (e.g. ts at time zone ''UTC'')',
            events, v_ts_type
            using errcode = '42804';
    end if;
    if max_age is not null and max_age < interval '0' then
        raise exception 'max_age % is negative', max_age using errcode = '22023';
    end if;
    execute format('select count(*) from %s where ts is null or symbol is null', events) into v_count;
    if v_count > 0 then
        raise exception 'events %: % event(s) without symbol or ts', events, v_count
            using errcode = '23502';
    end if;
    -- a symbol with no snapshot and no bar at all (index probes per distinct symbol)
    execute format(
        $q$
        with recursive symbols as (
            (select symbol from %1$s order by symbol limit 1)
            union all
            select (select next_event.symbol from %1$s as next_event
                    where next_event.symbol > symbols.symbol order by next_event.symbol limit 1)
            from symbols where symbols.symbol is not null
        )
        select string_agg(symbols.symbol::text, ', ' order by symbols.symbol)
        from symbols
        where symbols.symbol is not null
            and not exists (select from market.l2_snapshots as s where s.symbol = symbols.symbol)
            and not exists (select from market.bars_1m as b where b.symbol = symbols.symbol)
        $q$, events) into v_problem;
    if v_problem is not null then
        raise exception 'events %: symbol(s) never seen (no snapshot and no bar): %', events, v_problem
            using errcode = '22023';
    end if;

    for v_model in
        select resolved.model, resolved.available_after,
            array_agg(resolved.name order by attribute.attnum) as names
        from features.resolve_features(features) with ordinality as resolved (name, model, available_after, pos)
        join pg_attribute as attribute
            on attribute.attrelid = format('features.%I', resolved.model)::regclass
            and attribute.attname = resolved.name
        group by resolved.model, resolved.available_after
        order by min(resolved.pos)
    loop
        select string_agg(format('%I.%I', v_model.model, name), ', ') into v_columns
        from unnest(v_model.names) as name;
        v_select := v_select || format(', %1$I.ts as %2$I, %3$s', v_model.model, v_model.model || '_ts', v_columns);
        v_bound := case
            when v_model.available_after = interval '0' then 'events.ts'
            else format('events.ts - %L::interval', v_model.available_after)
        end;
        v_joins := v_joins || format(
            E'\nleft join lateral (\n    select source.ts, %1$s\n    from features.%2$I as source\n'
            '    where source.symbol = events.symbol and source.ts <= %3$s%4$s\n'
            '    order by source.ts desc\n    limit 1\n) as %2$I on true',
            (select string_agg(format('source.%I', name), ', ') from unnest(v_model.names) as name),
            v_model.model,
            v_bound,
            case when max_age is null then ''
                 else format(' and source.ts >= %s - %L::interval', v_bound, max_age) end
        );
    end loop;

    -- an event column named like an output column would be ambiguous
    select attribute.attname into v_clash
    from pg_attribute as attribute
    where attribute.attrelid = events and attribute.attnum > 0 and not attribute.attisdropped
        and attribute.attname not in ('symbol', 'ts')
        and (
            attribute.attname in (select resolved.name from features.resolve_features(features) as resolved)
            or attribute.attname in (select resolved.model || '_ts' from features.resolve_features(features) as resolved)
        )
    limit 1;
    if v_clash is not null then
        raise exception 'events %: column % has the name of an output column; rename it', events, v_clash
            using errcode = '42701';
    end if;

    -- the events in (symbol, ts) order: each family's index probes then walk its table
    -- forward instead of jumping around it (a 100,000-event set over gigabytes of bars)
    return format(E'select %s\nfrom (select * from %s order by symbol, ts) as events%s',
        v_select, events, v_joins);
end;
$$;

-- The training set for any SQL client: built into a temporary table (default training_set)
-- of the session, replaced if it exists; returns its row count. Then
--   select * from training_set;
create function features.training_set(
    events regclass, features text[], max_age interval default null,
    into_table text default 'training_set'
)
returns bigint
language plpgsql
as $$
declare
    v_rows bigint;
begin
    execute format('drop table if exists pg_temp.%I', into_table);
    execute format('create temporary table %I as %s', into_table,
        features.training_set_sql(events, features, max_age));
    get diagnostics v_rows = row_count;
    return v_rows;
end;
$$;

comment on function features.training_set(regclass, text[], interval, text) is
    'Point-in-time training set: each event (symbol, ts, ...) with the asked features as known at ts, into a temporary table (default training_set); returns its row count.';
comment on function features.training_set_sql(regclass, text[], interval) is
    'The query of features.training_set, for clients that run it themselves (COPY, a cursor).';
