{#-
    The final one-minute bars (FEATURE_DEFINITIONS K0, K-bars) as a query: the loaded bars of
    market.bars_1m, and the bars derived from snapshots (bars_1m_l2) for the minutes without a
    loaded bar (a loaded bar wins) that are final: the symbol has a snapshot at or after the
    minute's end. `origin` says which. The body of the view stg_bars_1m, and what bars_1m_final
    reads directly, so that it follows bars_1m_l2 without waiting on the view's readers.
-#}
{% macro final_minute_bars() -%}
{%- set derived_bars = ref('bars_1m_l2') %}
{%- set bar_columns = ['symbol', 'ts', 'open', 'high', 'low', 'close', 'volume', 'spread', 'ticks'] %}
with

loaded as (
    select
        {%- for column in bar_columns %}
        bars.{{ column }},
        {%- endfor %}
        'loaded'::text as origin
    from {{ source('market', 'bars_1m') }} as bars
),

-- each symbol's newest snapshot, one index probe per symbol
newest as (
    with recursive symbols as (
        {{ distinct_symbols(derived_bars) }}
    )

    select
        symbols.symbol,
        (
            select max(snapshots.ts) from {{ source('market', 'l2_snapshots') }} as snapshots
            where snapshots.symbol = symbols.symbol
        ) as ts
    from symbols
    where symbols.symbol is not null
),

derived as (
    select
        {%- for column in bar_columns %}
        bars.{{ column }},
        {%- endfor %}
        'l2'::text as origin
    from {{ derived_bars }} as bars
    inner join newest on bars.symbol = newest.symbol
    where
        bars.ts + interval '1 minute' <= newest.ts
        and not exists (
            select from {{ source('market', 'bars_1m') }} as loaded_bar
            where loaded_bar.symbol = bars.symbol and loaded_bar.ts = bars.ts
        )
),

final as (
    select * from loaded
    union all
    select * from derived
)

select * from final
{%- endmacro %}
