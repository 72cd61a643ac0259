{#-
    The columns an incremental run inserts (dbt's dest_columns), and on_schema_change 'fail'
    checked, in one catalog query: dbt's process_schema_changes asks the catalog twice through
    adapter.get_columns_in_relation, and each call builds a macro context of every macro of
    the project (about 10 ms of dbt's own CPU a call, on the cores the models run on).
    'fail' raises when a column was added, removed or changed type against the table;
    'ignore' inserts the table's columns. Other settings (append_new_columns,
    sync_all_columns) are dbt's own.
-#}
{% macro incremental_columns(on_schema_change, temp_relation, existing_relation) -%}
    {%- if on_schema_change not in ('fail', 'ignore') -%}
        {{ return(process_schema_changes(on_schema_change, temp_relation, existing_relation)
            or adapter.get_columns_in_relation(existing_relation)) }}
    {%- endif -%}
    {%- set query -%}
        with

        target as (
            select attribute.attname as name, attribute.attnum, format_type(attribute.atttypid, attribute.atttypmod) as data_type
            from pg_attribute as attribute
            where attribute.attrelid = {{ dbt.string_literal(existing_relation.render()) }}::regclass
                and attribute.attnum > 0 and not attribute.attisdropped
        ),

        source as (
            select attribute.attname as name, format_type(attribute.atttypid, attribute.atttypmod) as data_type
            from pg_attribute as attribute
            where attribute.attrelid = {{ dbt.string_literal(temp_relation.render()) }}::regclass
                and attribute.attnum > 0 and not attribute.attisdropped
        )

        select
            coalesce(target.name, source.name) as name,
            target.data_type as target_type,
            source.data_type as source_type
        from target
        full join source on target.name = source.name
        order by target.attnum nulls last, source.name
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- set changed = [] -%}
    {%- set columns = [] -%}
    {%- for row in rows -%}
        {%- if row['target_type'] != row['source_type'] -%}
            {%- do changed.append(row['name'] ~ ' (table: ' ~ (row['target_type'] or 'absent') ~ ', model: ' ~ (row['source_type'] or 'absent') ~ ')') -%}
        {%- endif -%}
        {%- if row['target_type'] is not none -%}
            {%- do columns.append(api.Column.create(row['name'], row['target_type'])) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if changed and on_schema_change == 'fail' -%}
        {{ exceptions.raise_compiler_error(
            "the columns of " ~ existing_relation ~ " no longer match its model (on_schema_change 'fail'): "
            ~ changed | join(', ')
            ~ "; rebuild it with `tickfeatures refresh --full` (or dbt's --full-refresh)") }}
    {%- endif -%}
    {{ return(columns) }}
{%- endmacro %}
