{#-
    Pre-hook of every incremental L2 model: snapshot the loaded files this model has not
    processed yet, with the earliest timestamp each added per symbol. The model reads its
    refresh scope from this list and the post-hook marks exactly these files as processed,
    so a file committed while the model runs is picked up by the next refresh.
    `after`: a model this one reads instead of the raw snapshots; only files it has processed
    are listed, so a file loaded between the two models' runs waits for the next refresh.
    It also turns JIT off for the model's transaction: LLVM compilation of these large
    queries took about 2 s each, longer than an incremental refresh's own work.
-#}
{% macro refresh_begin(kind='l2', after=none) -%}
    -- JIT compilation costs seconds per query and buys nothing on these window pipelines
    set local jit = off;

    drop table if exists {{ _pending_files_relation(this) }}_started;
    create temporary table {{ _pending_files_relation(this) }}_started as
    select clock_timestamp() as started_at;

    drop table if exists {{ _pending_files_relation(this) }};
    create temporary table {{ _pending_files_relation(this) }} as
    select
        ranges.file_id,
        ranges.symbol,
        ranges.min_ts
    from ops.ingest_ranges as ranges
    inner join ops.ingest_files as files on ranges.file_id = files.file_id
    where
        files.status = 'loaded'
        and files.kind = '{{ kind }}'
        and not exists (
            select from ops.refresh_files as done
            where done.model = '{{ this.identifier }}' and done.file_id = ranges.file_id
        )
        {%- if after %}
        and exists (
            select from ops.refresh_files as upstream
            where upstream.model = '{{ after }}' and upstream.file_id = ranges.file_id
        )
        {%- endif %}
{%- endmacro %}
