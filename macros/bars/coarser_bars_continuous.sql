{#-
    bars_30m / bars_60m as TimescaleDB continuous aggregates over the hypertable of final
    one-minute bars, bars_1m_final (the TSL edition's; macros/materializations/
    continuous_aggregate.sql): the same rows as coarser_bars (FEATURE_DEFINITIONS K-bars):
    first open, max high, min low, last close, summed volume and ticks, mean spread, `bars`.
    Both read the one-minute bars, not 60 minutes from the 30-minute aggregate: the mean
    spread of an hour is not the mean of its two half-hours' means.
-#}
{% macro coarser_bars_continuous(minutes) -%}
    {%- set bucket = "interval '" ~ minutes ~ " minutes'" -%}
select
    minute_bar.symbol,
    time_bucket({{ bucket }}, minute_bar.ts) as ts,
    first(minute_bar.open, minute_bar.ts) as open,
    max(minute_bar.high) as high,
    min(minute_bar.low) as low,
    last(minute_bar.close, minute_bar.ts) as close,
    sum(minute_bar.volume) as volume,
    avg(minute_bar.spread) as spread,
    sum(minute_bar.ticks) as ticks,
    count(*)::integer as bars
from {{ ref('bars_1m_final') }} as minute_bar
group by minute_bar.symbol, time_bucket({{ bucket }}, minute_bar.ts)
{%- endmacro %}


{% macro bars_30m_continuous() -%}
    {{ return(coarser_bars_continuous(30)) }}
{%- endmacro %}


{% macro bars_60m_continuous() -%}
    {{ return(coarser_bars_continuous(60)) }}
{%- endmacro %}
