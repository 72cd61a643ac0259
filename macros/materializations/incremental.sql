{#-
    dbt's incremental materialization, except that a full refresh of an existing table builds
    the new one beside it and swaps it in with replace_relation, so the views on it stay
    (dbt's own drops them with the old table). First builds and incremental runs are dbt's.
    With the var tf_compile_procedures it runs nothing and compiles the incremental run into a
    procedure instead (compile_refresh_procedure). A model naming `continuous_aggregate` is
    one where TimescaleDB's TSL edition is loaded (continuous_aggregate.sql).
-#}
{% materialization incremental, adapter='postgres' -%}
    {%- if var('tf_compile_procedures', false) -%}
        {{ return(compile_refresh_procedure()) }}
    {%- endif -%}
    {%- if config.get('continuous_aggregate') and continuous_aggregates_available() -%}
        {{ return(build_continuous_aggregate(config.get('continuous_aggregate'))) }}
    {%- endif -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set temp_relation = make_temp_relation(target_relation) -%}
    {%- set full_refresh_mode = should_full_refresh() or (existing_relation is not none and existing_relation.is_view) -%}
    {%- set on_schema_change = incremental_validate_on_schema_change(config.get('on_schema_change'), default='ignore') -%}
    {%- set grant_config = config.get('grants') -%}

    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    -- BEGIN
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if existing_relation is none %}
        {%- call statement('main') -%}
            {{ get_create_table_as_sql(False, target_relation, sql) }}
        {%- endcall -%}
        {%- do create_indexes(target_relation) -%}
    {%- elif full_refresh_mode %}
        {%- call statement('main') -%}
            {{ get_create_table_as_sql(False, intermediate_relation, sql) }}
        {%- endcall -%}
        {%- do create_indexes(intermediate_relation) -%}
        {%- do replace_relation(existing_relation, intermediate_relation) -%}
    {%- else %}
        {%- do run_query(get_create_table_as_sql(True, temp_relation, sql)) -%}
        {#- no adapter.expand_target_column_types: it widens varchar(n) columns only (none here)
            and costs two catalog queries per model and run; on_schema_change ('fail') still
            compares every column's type -#}
        {%- set dest_columns = incremental_columns(on_schema_change, temp_relation, existing_relation) -%}
        {%- set strategy = adapter.get_incremental_strategy_macro(context, config.get('incremental_strategy') or 'default') -%}
        {%- call statement('main') -%}
            {{ strategy({
                'target_relation': target_relation,
                'temp_relation': temp_relation,
                'unique_key': config.get('unique_key'),
                'dest_columns': dest_columns,
                'incremental_predicates': config.get('incremental_predicates'),
            }) }}
        {%- endcall -%}
    {%- endif %}

    {%- do apply_grants(target_relation, grant_config, should_revoke=should_revoke(existing_relation, full_refresh_mode)) -%}
    {%- do persist_docs(target_relation, model) -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    -- COMMIT
    {%- do adapter.commit() -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization %}
