{#-
    The continuous-aggregate path of the incremental materialization (FEATURE_DEFINITIONS
    K-bars): a model whose config names `continuous_aggregate` (a macro returning the
    aggregate's SELECT) is, where TimescaleDB's TSL edition is loaded, a real continuous
    aggregate with real-time aggregation and a refresh policy, instead of an incremental
    table with the same rows. Detected at run time: `timescaledb.license` is 'timescale'.
    The var tf_no_continuous_aggregates forces the incremental table (the test that compares
    the two paths builds both).
-#}
{% macro continuous_aggregates_available() -%}
    {%- if var('tf_no_continuous_aggregates', false) or not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set found = run_query("select coalesce(current_setting('timescaledb.license', true), '') = 'timescale'") -%}
    {{ return(found.columns[0].values()[0]) }}
{%- endmacro %}


{#-
    Create (first run, or a table or view left by the other path) or refresh the continuous
    aggregate `this`, with the model's hooks around it so that ops.refresh_state and
    ops.refresh_runs advance as for any incremental model (mode 'continuous'). A refresh policy
    keeps it current between runs (start_offset: all of history, so late rows are
    materialized too; end_offset: the current minute, which real-time aggregation covers).
    Each run also refreshes what TimescaleDB's invalidation log holds, after its transaction
    (TimescaleDB refuses refresh_continuous_aggregate inside one), so a run leaves it exact;
    --full-refresh re-materializes every bucket (force) and keeps the aggregate, and so the
    views reading it. The state comes from the catalog, not dbt's relation cache: an upstream
    pre-hook of this run may have dropped the aggregate (drop_continuous_aggregates).
-#}
{% macro build_continuous_aggregate(definition_macro) -%}
    {%- set state = run_query(
        "select c.relkind::text, exists ("
        ~ " select from timescaledb_information.continuous_aggregates as a"
        ~ " where a.view_schema = n.nspname and a.view_name = c.relname)"
        ~ " from pg_class as c join pg_namespace as n on c.relnamespace = n.oid"
        ~ " where n.nspname = '" ~ this.schema ~ "' and c.relname = '" ~ this.identifier ~ "'"
    ) -%}
    {%- set exists = state.rows | length > 0 -%}
    {%- set is_cagg = exists and state.rows[0][1] -%}
    {%- set definition = context[definition_macro]() -%}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- if not is_cagg %}
        {%- if exists %}
            {#- the incremental table (or a view) of the other path, and what reads it -#}
            {%- call statement('drop_existing') -%}
                drop {{ 'view' if state.rows[0][0] == 'v' else 'table' }} {{ this }} cascade
            {%- endcall -%}
        {%- endif %}
        {%- call statement('main') -%}
            create materialized view {{ this }}
            with (timescaledb.continuous, timescaledb.materialized_only = false) as
            {{ definition }}
            with no data
        {%- endcall -%}
        {%- call statement('policy') -%}
            select add_continuous_aggregate_policy(
                '{{ this }}',
                start_offset => null,
                end_offset => interval '1 minute',
                schedule_interval => interval '1 minute'
            )
        {%- endcall -%}
    {%- else %}
        {%- call statement('main') -%}
            select 1
        {%- endcall -%}
    {%- endif %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {%- do adapter.commit() -%}
    {#- outside any transaction: materialize what the invalidation log holds (everything, on a
        new aggregate; every bucket, forced, on --full-refresh) up to the current minute, which
        real-time aggregation serves. The explicit commit ends the transaction the driver
        opened, so the call runs outside one. -#}
    {%- do run_query("commit") -%}
    {%- do run_query(
        "call refresh_continuous_aggregate('" ~ this ~ "', null, date_trunc('minute', now())"
        ~ (", force => true" if should_full_refresh() and is_cagg else "") ~ ")"
    ) -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [this.incorporate(type='materialized_view')]}) }}
{%- endmacro %}


{#-
    Pre-hook of a hypertable that continuous aggregates read (bars_1m_final): before a full
    rebuild swaps in the new table, drop the aggregates named in `readers` (their own models
    rebuild them later in the same run; ops.replace_relation cannot carry an aggregate over,
    and TimescaleDB refuses to drop a hypertable an aggregate reads).
-#}
{% macro drop_continuous_aggregates(readers) -%}
    {%- if should_full_refresh() and continuous_aggregates_available() -%}
    do $drop$
    declare
        reader record;
    begin
        for reader in
            select view_schema, view_name from timescaledb_information.continuous_aggregates
            where view_schema = '{{ this.schema }}'
                and view_name in ({% for r in readers %}'{{ r }}'{{ ', ' if not loop.last }}{% endfor %})
        loop
            execute format('drop materialized view %I.%I cascade', reader.view_schema, reader.view_name);
        end loop;
    end
    $drop$
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
