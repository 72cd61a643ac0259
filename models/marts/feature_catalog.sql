{#- One row per feature, generated from the models' YAML (name, family, model, definition, unit, window): the L2 families, the targets, the heavy-math families and the hht columns heavy_features combines with each snapshot. -#}
{{ config(materialized='table') }}
{%- set rows = [] -%}
{%- for model in l2_family_models() + ['l2_targets'] + heavy_family_models() + ['heavy_features'] -%}
    {%- set family = {'l2_targets': 'targets', 'heavy_features': 'hht'}.get(model, model) -%}
    {%- for column in documented_columns(model) if column.name not in ('symbol', 'ts') -%}
        {%- set meta = column.config.meta if column.config is defined and column.config.meta else column.meta -%}
        {#- heavy_features repeats the families' columns; only the ones it defines (with a unit) are features of its own -#}
        {%- if model != 'heavy_features' or meta.get('unit') -%}
        {%- do rows.append([column.name, family, model, column.description, meta.get('unit'), meta.get('window')]) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endfor %}
with

catalog as (
    select *
    from (
        values
        {%- for row in rows %}
        (
            {%- for value in row -%}
            {{ "null" if value is none else "'" ~ (value | replace("'", "''")) ~ "'" }}{{ ', ' if not loop.last }}
            {%- endfor -%}
        ){{ ',' if not loop.last }}
        {%- endfor %}
    ) as features (feature_name, family, model, definition, unit, feature_window)
),

final as (
    select
        feature_name::text as name,  -- noqa: RF04
        family::text as family,  -- noqa: RF04
        model::text as model,  -- noqa: RF04
        definition::text as definition,  -- noqa: RF04
        unit::text as unit,  -- noqa: RF04
        feature_window::text as "window"  -- noqa: RF04
    from catalog
)

select * from final
