{#- Post-hook: mark the snapshot's files processed and log the run in ops.refresh_runs. -#}
{% macro refresh_end() -%}
    {%- set pending = _pending_files_relation(this) -%}
    insert into ops.refresh_files (model, file_id)
    select distinct
        '{{ this.identifier }}',
        pending.file_id
    from {{ pending }} as pending
    on conflict do nothing;

    insert into ops.refresh_runs (
        model, mode, window_start, window_end, rows, status, started_at, finished_at, duration_ms
    )
    select
        '{{ this.identifier }}',
        '{{ "incremental" if is_incremental() else "full" }}',
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
            from (select distinct pending.symbol from {{ pending }} as pending) as refreshed
            cross join lateral (
                select max(model.ts) as ts from {{ this }} as model
                where model.symbol = refreshed.symbol
            ) as latest
        ),
        -- rows at or after each symbol's earliest new timestamp: index range counts
        (
            select coalesce(sum(written.n), 0)
            from (
                select pending.symbol, min(pending.min_ts) as min_ts
                from {{ pending }} as pending
                group by pending.symbol
            ) as new_data
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
        1000 * extract(epoch from clock_timestamp() - started.started_at)
    from {{ pending }}_started as started;

    drop table if exists {{ pending }};
    drop table if exists {{ pending }}_started
{%- endmacro %}
