{#-
    The table and view materializations: dbt's own, except that an existing relation is
    replaced by one built beside it, through replace_relation, so the views on it stay.
-#}
{% macro build_and_replace(relation_type) -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type=relation_type) -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set built = target_relation if existing_relation is none else intermediate_relation -%}

    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    -- BEGIN
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- call statement('main') -%}
        {%- if relation_type == 'view' -%}
            {{ get_create_view_as_sql(built, sql) }}
        {%- else -%}
            {{ get_create_table_as_sql(False, built, sql) }}
        {%- endif -%}
    {%- endcall -%}
    {%- if relation_type == 'table' -%}
        {%- do create_indexes(built) -%}
    {%- endif -%}
    {%- if existing_relation is not none -%}
        {%- do replace_relation(existing_relation, intermediate_relation) -%}
    {%- endif -%}
    {%- do apply_grants(target_relation, config.get('grants'), should_revoke=should_revoke(existing_relation, full_refresh_mode=True)) -%}
    {%- do persist_docs(target_relation, model) -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    -- COMMIT
    {%- do adapter.commit() -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{%- endmacro %}
