{#- Every L2 family side by side: one row per symbol per snapshot. -#}
{{ config(materialized='view') }}
with

{% for family in l2_family_models() -%}
{{ family }} as (
    select * from {{ ref(family) }}
),

{% endfor -%}
final as (
    select
        microstructure.symbol,
        microstructure.ts
        {%- for family in l2_family_models() %}
        {%- for column in documented_columns(family) if column.name not in ('symbol', 'ts') %},
        {{ family }}.{{ column.name }}
        {%- endfor %}
        {%- endfor %}
    from microstructure
    {%- for family in l2_family_models()[1:] %}
    inner join {{ family }}
        on microstructure.symbol = {{ family }}.symbol and microstructure.ts = {{ family }}.ts
    {%- endfor %}
)

select * from final
