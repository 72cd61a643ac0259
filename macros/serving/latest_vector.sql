{#-
    The latest feature vector of a symbol (issue "Serving features"): its newest row of a mart
    (l2_features, with the heavy families carried forward as heavy_features carries them to
    that snapshot; or bar_features), plus feature_ts (that row's ts) and staleness (the
    symbol's newest raw row, a snapshot or a one-minute bar, minus feature_ts).

    latest_row_sql(kind, symbol): the query of that one row for the SQL expression `symbol`;
    backward index probes (each family's newest ts) and primary-key probes only, whatever the
    history's length. The
    views latest_<kind>_all run it per symbol; the function features.latest_<kind>(p_symbol)
    (define_latest_function, the views' post-hook) runs it for one.
-#}
{% macro latest_row_sql(kind, symbol) -%}
{%- if kind == 'l2' -%}
    {%- set l2_columns = [] -%}
    {%- for family in l2_family_models() -%}
        {%- for column in documented_columns(family) -%}
            {%- do l2_columns.append(column.name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set heavy_columns = [] -%}
    {%- for family in heavy_family_models() -%}
        {%- do heavy_columns.append(family ~ '_window_end') -%}
        {%- for column in documented_columns(family) if column.name not in ('symbol', 'ts') -%}
            {%- do heavy_columns.append(column.name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for column in documented_columns('heavy_features') -%}
        {%- if column.name not in l2_columns and column.name not in heavy_columns -%}
            {%- do heavy_columns.append(column.name) -%}
        {%- endif -%}
    {%- endfor %}
    select
        newest.*,
        {%- for column in heavy_columns %}
        heavy.{{ column }},
        {%- endfor %}
        newest.ts as feature_ts,
        (
            select max(snapshots.ts) from {{ source('market', 'l2_snapshots') }} as snapshots
            where snapshots.symbol = {{ symbol }}
        ) - newest.ts as staleness
    from {{ ref('l2_features') }} as newest
    left join lateral (
        select * from {{ ref('heavy_features') }} as carried
        where carried.symbol = newest.symbol and carried.ts = newest.ts
    ) as heavy on true
    where
        newest.symbol = {{ symbol }}
        and newest.ts = {{ _newest_common_ts(l2_family_models(), symbol) }}
{%- elif kind == 'bars' %}
    select
        newest.*,
        newest.ts as feature_ts,
        greatest(
            (
                select max(loaded.ts) from {{ source('market', 'bars_1m') }} as loaded
                where loaded.symbol = {{ symbol }}
            ),
            (
                select max(derived.ts) from {{ ref('bars_1m_l2') }} as derived
                where derived.symbol = {{ symbol }}
            )
        ) - newest.ts as staleness
    from {{ ref('bar_features') }} as newest
    where
        newest.symbol = {{ symbol }}
        and newest.ts = {{ _newest_common_ts(bar_family_models(), symbol) }}
{%- else -%}
    {{ exceptions.raise_compiler_error("latest_row_sql: kind is 'l2' or 'bars', got '" ~ kind ~ "'") }}
{%- endif -%}
{%- endmacro %}


{#-
    The newest ts every family of `families` has for `symbol`: the least of their newest
    rows (one backward index probe each). Each family has a row for every snapshot (bar) up
    to its newest, so the mart has that row; a sort of the mart's join by ts would not be an
    index read.
-#}
{% macro _newest_common_ts(families, symbol) -%}
least(
    {%- for family in families %}
    (select max(family_rows.ts) from {{ ref(family) }} as family_rows where family_rows.symbol = {{ symbol }}){{ ',' if not loop.last }}
    {%- endfor %}
)
{%- endmacro %}


{#- The view of every symbol's latest vector: symbols by a skip scan of `symbols_from`. -#}
{% macro latest_vector_view(kind, symbols_from) -%}
with

known_symbols as (
    {%- for relation in symbols_from %}
    {%- if not loop.first %}
    union
    {%- endif %}
    (
        with recursive symbols as (
            {{ distinct_symbols(relation) }}
        )

        select symbols.symbol from symbols where symbols.symbol is not null
    )
    {%- endfor %}
)

select latest.*
from known_symbols
cross join lateral (
    {{ latest_row_sql(kind, 'known_symbols.symbol') | indent(4) }}
) as latest
{%- endmacro %}


{#-
    Post-hook of the latest_<kind>_all views: (re)creates features.latest_<kind>(p_symbol text)
    returning the view's columns (read from the catalog, so they always match), with the same
    row query for one symbol. A SQL function of one SELECT: PostgreSQL inlines it into the
    caller's query, so a prepared `select * from features.latest_l2($1)` plans as index scans.
-#}
{% macro define_latest_function(kind) -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set columns = run_query(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute"
        ~ " where attrelid = '" ~ this ~ "'::regclass and attnum > 0 and not attisdropped"
        ~ " order by attnum"
    ).rows -%}
    -- replaced in place, so that a reader planning a call meanwhile finds the function (a drop
    -- and create gave it "cache lookup failed for function"); dropped first only when its
    -- columns changed, which create or replace refuses (42P13)
    do $tf_latest$
    begin
        {{ _create_latest_function(kind, columns, 'create or replace') | indent(8) }}
    exception when invalid_function_definition then
        drop function {{ this.schema }}.latest_{{ kind }}(text);
        {{ _create_latest_function(kind, columns, 'create') | indent(8) }}
    end
    $tf_latest$;
    comment on function {{ this.schema }}.latest_{{ kind }}(text) is
        'The newest feature vector of one symbol (one row, or none), with feature_ts and staleness; the row of {{ this }} for that symbol.'
{%- endmacro %}


{% macro _create_latest_function(kind, columns, verb) -%}
{{ verb }} function {{ this.schema }}.latest_{{ kind }}(p_symbol text)
returns table (
    {%- for column in columns %}
    {{ adapter.quote(column[0]) }} {{ column[1] }}{{ ',' if not loop.last }}
    {%- endfor %}
)
language sql
stable
as $latest$
{{ without_database(latest_row_sql(kind, 'p_symbol')) }}
$latest$;
{%- endmacro %}
