{#-
    Every column check a model's YAML declares, in one scan of the model: a column's
    `config: meta: checks: {not_null: true, finite: true, min: X, max: Y}` asks that it is never
    NULL, never NaN or an infinity (section T17: only NULL means no value), and within [X, Y]
    where it is not NULL. One row per check that fails, with its count of offending rows.

    One model-level test instead of one dbt test per column and check: with about 830 checked
    columns those were about 1,000 test nodes, which cost every full parse of the project
    about a third of its time (`dbt parse` 6.9 s with them, 4.5 s without: docs/decisions.md)
    and every `dbt build` a scan per check.
-#}
{% test column_checks(model) %}
    {%- set checks = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model'
            and (node.alias or node.name) == model.identifier
            and node.schema == model.schema -%}
            {%- for column in node.columns.values() -%}
                {%- set wanted = (column.meta or {}).get('checks') or {} -%}
                {%- set unknown = wanted.keys() | reject('in', ['not_null', 'finite', 'min', 'max']) | list -%}
                {%- if unknown -%}
                    {{ exceptions.raise_compiler_error("column_checks: " ~ node.name ~ "." ~ column.name ~ " has unknown checks " ~ unknown | join(', ') ~ " (not_null, finite, min, max)") }}
                {%- endif -%}
                {%- set quoted = adapter.quote(column.name) -%}
                {%- if wanted.get('not_null') -%}
                    {%- do checks.append((column.name ~ ' is null', quoted ~ ' is null')) -%}
                {%- endif -%}
                {%- if wanted.get('finite') -%}
                    {%- do checks.append((column.name ~ ' is NaN or infinite', quoted ~ " in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)")) -%}
                {%- endif -%}
                {%- if wanted.get('min') is not none or wanted.get('max') is not none -%}
                    {%- set bounds = [] -%}
                    {%- if wanted.get('min') is not none -%}{%- do bounds.append(quoted ~ ' >= ' ~ wanted['min']) -%}{%- endif -%}
                    {%- if wanted.get('max') is not none -%}{%- do bounds.append(quoted ~ ' <= ' ~ wanted['max']) -%}{%- endif -%}
                    {%- do checks.append((
                        column.name ~ ' outside [' ~ wanted.get('min', '-inf') ~ ', ' ~ wanted.get('max', 'inf') ~ ']',
                        quoted ~ ' is not null and not (' ~ bounds | join(' and ') ~ ')'
                    )) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif %}

{%- if checks %}
with counted as (
    select
        {%- for name, condition in checks %}
        count(*) filter (where {{ condition }}) as check_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
)

select failing.check_name, failing.failures
from counted
cross join lateral (
    values
    {%- for name, condition in checks %}
        ('{{ name | replace("'", "''") }}', counted.check_{{ loop.index }}){{ ',' if not loop.last }}
    {%- endfor %}
) as failing (check_name, failures)
where failing.failures > 0
{%- else %}
select null::text as check_name, null::bigint as failures
where false
{%- endif %}
{% endtest %}
