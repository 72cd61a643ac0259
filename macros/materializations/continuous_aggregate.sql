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
    Build (first run, --full-refresh, or a table left by the other path) or refresh the
    continuous aggregate `this`, with the model's hooks around it so that ops.refresh_state
    and ops.refresh_runs advance as for any incremental model. A refresh policy keeps it
    current between runs (the aggregate's start_offset: all of history, so late rows are
    materialized too; end_offset: the current minute, which real-time aggregation covers);
    each run also refreshes what the invalidation log holds, after its transaction (TimescaleDB
    refuses refresh_continuous_aggregate inside one), so a run leaves it exact.
-#}
{% macro build_continuous_aggregate(definition_macro) -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set is_cagg = run_query(
        "select count(*) from timescaledb_information.continuous_aggregates"
        ~ " where view_schema = '" ~ this.schema ~ "' and view_name = '" ~ this.identifier ~ "'"
    ).columns[0].values()[0] > 0 -%}
    {%- set rebuild = should_full_refresh() or not is_cagg -%}
    {%- set definition = context[definition_macro]() -%}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- if rebuild %}
        {%- if existing_relation is not none %}
            {#- the views reading it (stg_bars_1m) are rebuilt downstream in the same run -#}
            {%- call statement('drop_existing') -%}
                {%- if is_cagg %}
                drop materialized view {{ this }} cascade
                {%- else %}
                drop {{ existing_relation.type }} {{ this }} cascade
                {%- endif %}
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
        new aggregate) up to the current minute, which real-time aggregation serves. The
        explicit commit ends the transaction the driver opened, so the call runs outside one. -#}
    {%- do run_query("commit") -%}
    {%- do run_query("call refresh_continuous_aggregate('" ~ this ~ "', null, date_trunc('minute', now()))") -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [this.incorporate(type='materialized_view')]}) }}
{%- endmacro %}
