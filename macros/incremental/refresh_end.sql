{#-
    Post-hook: record the snapshot of ops.invalidations this run processed (refresh_begin),
    log the run in ops.refresh_runs, and prune the log entries every model of the kind has
    processed.
-#}
{% macro refresh_end(kind='l2') -%}
    {%- set pending = _pending_relation(this) -%}
    {%- set kinds = _refresh_kinds(kind) -%}
    insert into ops.refresh_state (model, kind, seen, refreshed_at)
    select
        '{{ this.identifier }}',
        kinds.kind,
        started.seen,
        now()
    from {{ pending }}_started as started
    cross join unnest(array[{% for k in kinds %}'{{ k }}'{{ ', ' if not loop.last }}{% endfor %}]) as kinds (kind)
    on conflict (model, kind) do update
        set seen = excluded.seen, refreshed_at = excluded.refreshed_at;

    insert into ops.refresh_runs (
        model, mode, window_start, window_end, rows, status, started_at, finished_at, duration_ms,
        via
    )
    select
        '{{ this.identifier }}',
        '{{ "continuous" if config.get("continuous_aggregate") and continuous_aggregates_available() else ("incremental" if is_incremental() else "full") }}',
        {% if is_incremental() -%}
        (select min(pending.min_ts) from {{ pending }} as pending),
        {%- else -%}
        null,
        {%- endif %}
        {% if is_incremental() -%}
        -- the newest row of the symbols refreshed, each an index lookup (a global max(ts)
        -- would scan the whole model)
        (
            select max(latest.ts)
            from {{ pending }} as refreshed
            cross join lateral (
                select max(model.ts) as ts from {{ this }} as model
                where model.symbol = refreshed.symbol
            ) as latest
        ),
        -- rows at or after each symbol's earliest new timestamp: index range counts
        (
            select coalesce(sum(written.n), 0)
            from {{ pending }} as new_data
            cross join lateral (
                select count(*) as n from {{ this }} as model
                where model.symbol = new_data.symbol and model.ts >= new_data.min_ts
            ) as written
        ),
        {%- else -%}
        (select max(model.ts) from {{ this }} as model),
        (select count(*) from {{ this }} as model),
        {%- endif %}
        'success',
        started.started_at,
        clock_timestamp(),
        1000 * extract(epoch from clock_timestamp() - started.started_at),
        -- features.refresh() sets it for each model it calls
        coalesce(nullif(current_setting('tickfeatures.refresh_via', true), ''), 'dbt')
    from {{ pending }}_started as started;

    -- an entry every model of its kind has processed (its writer visible in each one's
    -- snapshot, as refresh_begin reads them) is pruned. Not "older than the oldest snapshot's
    -- xmin": a transaction still running anywhere on the server (another database's build)
    -- holds every snapshot's xmin below it, and such entries stayed until a later refresh.
    {%- for k in kinds %}
    delete from ops.invalidations as written
    where
        written.kind = '{{ k }}'
        and exists (select from ops.refresh_state as state where state.kind = '{{ k }}')
        and not exists (
            select from ops.refresh_state as state
            where
                state.kind = '{{ k }}'
                and (
                    written.xid >= pg_snapshot_xmin(state.seen)
                    and not pg_visible_in_snapshot(written.xid, state.seen)
                )
        );
    {%- endfor %}

    drop table if exists {{ pending }};
    drop table if exists {{ pending }}_started
{%- endmacro %}
