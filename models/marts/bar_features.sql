{#- Every bar family side by side: one row per symbol per final one-minute bar that every family
    has (inner joins: a bar one family has not reached yet is not shown). -#}
{{ config(materialized='view') }}
{%- set families = bar_family_models() %}
with

{% for family in families -%}
{{ family }} as (
    select * from {{ ref(family) }}
),

{% endfor -%}
final as (
    select
        {{ families[0] }}.symbol,
        {{ families[0] }}.ts
        {%- for family in families %}
        {%- for column in bar_feature_columns(family) %},
        {{ family }}.{{ column.name }}
        {%- endfor %}
        {%- endfor %}
    from {{ families[0] }}
    {%- for family in families[1:] %}
    inner join {{ family }}
        on {{ families[0] }}.symbol = {{ family }}.symbol and {{ families[0] }}.ts = {{ family }}.ts
    {%- endfor %}
)

select * from final
