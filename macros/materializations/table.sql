{#- dbt's table materialization, with the swap of replace_relation: the views on the table stay. -#}
{% materialization table, adapter='postgres' -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set grant_config = config.get('grants') -%}

    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    -- BEGIN
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- set built = target_relation if existing_relation is none else intermediate_relation -%}
    {%- call statement('main') -%}
        {{ get_create_table_as_sql(False, built, sql) }}
    {%- endcall -%}
    {%- do create_indexes(built) -%}
    {%- if existing_relation is not none -%}
        {%- do replace_relation(existing_relation, intermediate_relation) -%}
    {%- endif -%}
    {%- do apply_grants(target_relation, grant_config, should_revoke=should_revoke(existing_relation, full_refresh_mode=True)) -%}
    {%- do persist_docs(target_relation, model) -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    -- COMMIT
    {%- do adapter.commit() -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization %}
