{#-
    Pre-hook of every incremental model that reads market.* (directly, or through `after`):
    list, per symbol, the earliest timestamp touched by the writes this model has not
    processed yet (ops.invalidations, logged by triggers whatever wrote the rows; migration
    0014), into a session-temporary table `_pending_relation(this)` (symbol, min_ts) that the
    model reads its refresh scope from. The post-hook (refresh_end) records the snapshot the
    list was taken in, so a write committed while the model runs is listed by the next run.
    `after`: a model this one reads instead of the raw rows; only writes it has processed are
    listed (and recorded as processed), so a write between the two models' runs waits for
    the next refresh.
    `kind`: 'l2', 'bars', or a list of both (a model reading the staged bars).
    It also turns JIT off for the model's transaction: LLVM compilation of these large
    queries took about 2 s each, longer than an incremental refresh's own work; and lowers
    the session's CPU priority to nice `refresh_nice` (dbt var, default 10; 0: off), so that
    readers keep their latency while refreshes fill the cores (udf.lower_priority, 0026).
-#}
{% macro refresh_begin(kind='l2', after=none) -%}
    {%- set pending = _pending_relation(this) -%}
    {%- set kinds = _refresh_kinds(kind) -%}
    -- JIT compilation costs seconds per query and buys nothing on these window pipelines
    set local jit = off;
    -- a session whose client died (a `kill -9` of the refresh) stops within a second instead of
    -- running its statement to the end, holding its locks (PostgreSQL 14+)
    set local client_connection_check_interval = 1000;
    {%- set nice = var('refresh_nice', 10) | int %}
    {%- if nice > 0 %}
    -- this session yields the CPU to readers (the latest vector) until it ends (migration 0026)
    select udf.lower_priority({{ nice }});
    {%- endif %}

    drop table if exists {{ pending }}_started;
    create temporary table {{ pending }}_started as
    select
        clock_timestamp() as started_at,
        {%- if after %}
        coalesce(
            -- one row per kind it reads, all recorded together with the same snapshot
            (
                select upstream.seen from ops.refresh_state as upstream
                where upstream.model = '{{ after }}'
                order by upstream.kind
                limit 1
            ),
            pg_current_snapshot()
        ) as seen
        {%- else %}
        pg_current_snapshot() as seen
        {%- endif %};

    drop table if exists {{ pending }};
    create temporary table {{ pending }} as
    select
        written.symbol,
        min(written.min_ts) as min_ts
    from ops.invalidations as written
    cross join {{ pending }}_started as started
    left join ops.refresh_state as mine
        on mine.model = '{{ this.identifier }}' and mine.kind = written.kind
    where
        written.kind in ({% for k in kinds %}'{{ k }}'{{ ', ' if not loop.last }}{% endfor %})
        and pg_visible_in_snapshot(written.xid, started.seen)
        and (
            mine.seen is null
            or (
                written.xid >= pg_snapshot_xmin(mine.seen)
                and not pg_visible_in_snapshot(written.xid, mine.seen)
            )
        )
    group by written.symbol
{%- endmacro %}


{#- The kinds of writes a model reads, as a list, checked. -#}
{% macro _refresh_kinds(kind) -%}
    {%- set kinds = [kind] if kind is string else kind -%}
    {%- for k in kinds if k not in ('l2', 'bars') -%}
        {{ exceptions.raise_compiler_error("refresh kind must be 'l2' or 'bars', got '" ~ k ~ "'") }}
    {%- endfor -%}
    {{ return(kinds) }}
{%- endmacro %}
