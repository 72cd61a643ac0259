{#-
    Bars of `minutes` minutes from the final one-minute bars (FEATURE_DEFINITIONS K-bars):
    time_bucket aligned to UTC midnight; first open, max high, min low, last close, summed
    volume, mean spread, summed ticks (SQL aggregates: NULLs skipped, NULL only when every
    bar's value is NULL), and `bars`, the number of one-minute bars. The current bucket is
    included while it fills, as a continuous aggregate holds it.
    Incremental: per symbol with new writes of either kind, the buckets from the earlier of
    the latest stored one and the one holding the minute before the earliest write (a new
    snapshot can make the previous minute final).
-#}
{% macro coarser_bars(minutes) -%}
    {%- if minutes is not number or minutes < 2 or 1440 % minutes != 0 -%}
        {{ exceptions.raise_compiler_error("coarser_bars: minutes must divide a day, got '" ~ minutes ~ "'") }}
    {%- endif -%}
    {%- set bucket = "interval '" ~ minutes ~ " minutes'" -%}
    {%- set minute_bars = ref('stg_bars_1m') %}
with

minute_bars as (
    {%- if is_incremental() %}
    {{ bucket_scope(bucket, back="interval '1 minute'") }}

    select symbol_bars.*
    {{ scoped_symbol_bars(minute_bars) }}
    {%- else %}
    select minute_bar.* from {{ minute_bars }} as minute_bar
    {%- endif %}
),

final as (
    select
        symbol,
        time_bucket({{ bucket }}, ts) as ts,
        (array_agg(open order by ts))[1] as open,
        max(high) as high,
        min(low) as low,
        (array_agg(close order by ts desc))[1] as close,
        sum(volume) as volume,
        avg(spread) as spread,
        sum(ticks) as ticks,
        count(*)::integer as bars
    from minute_bars
    group by symbol, time_bucket({{ bucket }}, ts)
)

select * from final
{%- endmacro %}
