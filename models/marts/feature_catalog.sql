{#-
    One row per feature, generated from the models' YAML (name, family, model, definition, unit,
    window): the L2 families, the targets, the heavy-math families and the hht columns
    heavy_features combines with each snapshot, and the bar families (their `state_*` columns are
    not features); with its version (model_version and its YAML
    entry), when that version first appeared (ops.feature_versions, which the post-hook
    keeps), the models it reads, its model's refresh times (ops.refresh_runs), and how long
    after its row's ts a value is known (available_after: a bar's values when the bar has
    closed). A view, so the refresh times are always current.
-#}
{{ config(
    materialized='view',
    post_hook="insert into ops.feature_versions (name, version, model, family, definition, unit, \"window\", model_version) select name, version, model, family, definition, unit, \"window\", model_version from {{ this }} on conflict do nothing",
) }}
{%- set rows = [] -%}
{%- for model in l2_family_models() + ['l2_targets'] + heavy_family_models() + ['heavy_features'] + bar_family_models() -%}
    {%- set family = {'l2_targets': 'targets', 'heavy_features': 'hht'}.get(model, model) -%}
    {%- set code = model_version(model) -%}
    {%- set upstream = model_upstream(model) -%}
    {%- for column in documented_columns(model) if column.name not in ('symbol', 'ts') and not column.name.startswith('state_') -%}
        {%- set meta = column.config.meta if column.config is defined and column.config.meta else column.meta -%}
        {#- heavy_features repeats the families' columns; only the ones it defines (with a unit) are features of its own -#}
        {%- if model != 'heavy_features' or meta.get('unit') -%}
        {%- set entry = [column.name, column.description, meta.get('unit'), meta.get('window')] | join('\n') -%}
        {%- do rows.append([
            column.name, family, model, column.description, meta.get('unit'), meta.get('window'),
            local_md5(code ~ '\n' ~ entry), code, '{' ~ (upstream | join(',')) ~ '}',
            '1 minute' if model in bar_family_models() else '0'
        ]) -%}
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
    ) as features (
        feature_name, family, model, definition, unit, feature_window, version, model_version, upstream,
        available_after
    )
),

models as (
    select distinct catalog.model from catalog
),

-- each model's last successful run and its mean over the last 100 (index scans of
-- ops.refresh_runs by model)
runs as (
    select
        models.model,
        last_run.finished_at as last_refreshed,
        last_run.duration_ms as last_duration_ms,
        recent.mean_duration_ms
    from models
    left join lateral (
        select
            refreshes.finished_at,
            refreshes.duration_ms
        from ops.refresh_runs as refreshes
        where refreshes.model = models.model and refreshes.status = 'success'
        order by refreshes.run_id desc
        limit 1
    ) as last_run on true
    left join lateral (  -- noqa: ST05
        select avg(latest.duration_ms) as mean_duration_ms
        from (
            select refreshes.duration_ms
            from ops.refresh_runs as refreshes
            where refreshes.model = models.model and refreshes.status = 'success'
            order by refreshes.run_id desc
            limit 100
        ) as latest
    ) as recent on true
),

final as (
    select
        catalog.feature_name::text as name,  -- noqa: RF04
        catalog.family::text as family,  -- noqa: RF04
        catalog.model::text as model,  -- noqa: RF04
        catalog.definition::text as definition,  -- noqa: RF04
        catalog.unit::text as unit,  -- noqa: RF04
        catalog.feature_window::text as "window",  -- noqa: RF04
        catalog.version::text as version,  -- noqa: RF04
        versions.first_seen as changed_at,
        catalog.upstream::text[] as upstream,
        runs.last_refreshed,
        runs.last_duration_ms,
        runs.mean_duration_ms::double precision as mean_duration_ms,
        catalog.model_version::text as model_version,
        catalog.available_after::interval as available_after
    from catalog
    left join ops.feature_versions as versions
        on catalog.feature_name = versions.name and catalog.version = versions.version
    left join runs on catalog.model = runs.model
)

select * from final
