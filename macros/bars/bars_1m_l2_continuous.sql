{#-
    bars_1m_l2 as a TimescaleDB continuous aggregate over market.l2_snapshots (the TSL
    edition's; macros/materializations/continuous_aggregate.sql): the same rows as the model's
    own SQL (FEATURE_DEFINITIONS K-bars): per symbol and minute, OHLC of the mid over the
    snapshots with a mid, mean level-1 spread, ticks = snapshots, volume NULL. Real-time
    aggregation (materialized_only = false) includes the current minute, as the model does.
-#}
{% macro bars_1m_l2_continuous() -%}
select
    snapshots.symbol,
    time_bucket(interval '1 minute', snapshots.ts) as ts,
    first({{ book_mid('snapshots') }}, snapshots.ts) filter (
        where {{ book_mid('snapshots') }} is not null
    ) as open,
    max({{ book_mid('snapshots') }}) as high,
    min({{ book_mid('snapshots') }}) as low,
    last({{ book_mid('snapshots') }}, snapshots.ts) filter (
        where {{ book_mid('snapshots') }} is not null
    ) as close,
    null::double precision as volume,
    avg(snapshots.ask_price_1 - snapshots.bid_price_1) as spread,
    count(*)::integer as ticks
from {{ source('market', 'l2_snapshots') }} as snapshots
group by snapshots.symbol, time_bucket(interval '1 minute', snapshots.ts)
{%- endmacro %}
