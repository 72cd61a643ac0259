{#- Post-hook: mark the snapshot's files processed and log the run in ops.refresh_runs. -#}
{% macro refresh_end() -%}
    insert into ops.refresh_files (model, file_id)
    select distinct '{{ this.identifier }}', pending.file_id
    from {{ _pending_files_relation(this) }} as pending
    on conflict do nothing;

    insert into ops.refresh_runs (
        model, window_start, window_end, rows, status, started_at, finished_at, duration_ms
    )
    select
        '{{ this.identifier }}',
        {% if is_incremental() %}(select min(pending.min_ts) from {{ _pending_files_relation(this) }} as pending){% else %}null{% endif %},
        (select max(model.ts) from {{ this }} as model),
        (select count(*) from {{ this }} as model),
        'success',
        coalesce((select min(pending.started_at) from {{ _pending_files_relation(this) }} as pending), clock_timestamp()),
        clock_timestamp(),
        1000 * extract(epoch from clock_timestamp() - coalesce(
            (select min(pending.started_at) from {{ _pending_files_relation(this) }} as pending),
            clock_timestamp()
        ));

    drop table if exists {{ _pending_files_relation(this) }}
{%- endmacro %}
