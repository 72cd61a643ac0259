{#-
    One-minute bars of each symbol's L2 snapshots (FEATURE_DEFINITIONS K-bars): open, high,
    low, close of the mid (A1; snapshots with a NULL mid skipped), spread = mean a_1 - b_1 of
    the snapshots with both quotes, ticks = number of snapshots, volume NULL (a book has no
    traded volume). Every minute with a snapshot, the current one too, as a continuous
    aggregate holds it; stg_bars_1m keeps the final ones (the symbol has a snapshot at or
    after the minute's end).
    Incremental: per symbol with new writes, the minutes from the earlier of the latest bar
    (it may have been partial) and the minute of the earliest write are recomputed. Where
    TimescaleDB's TSL edition is loaded, a continuous aggregate with the same rows instead
    (macros/bars/bars_1m_l2_continuous.sql).
-#}
{{ config(
    pre_hook="{{ refresh_begin('l2') }}",
    post_hook="{{ refresh_end('l2') }}",
    continuous_aggregate='bars_1m_l2_continuous',
) }}
-- depends_on: {{ ref('stg_l2_snapshots') }}
{%- set raw = source('market', 'l2_snapshots') %}
with

snapshots as (
    {%- if is_incremental() %}
    {{ bucket_scope("interval '1 minute'") }}

    select raw_rows.*
    from scope
    cross join lateral (
        select
            symbol_rows.symbol,
            symbol_rows.ts,
            symbol_rows.bid_price_1,
            symbol_rows.ask_price_1
        from {{ raw }} as symbol_rows
        where
            symbol_rows.symbol = scope.symbol
            and symbol_rows.ts >= scope.from_ts
        offset 0  -- one index range scan per symbol
    ) as raw_rows
    {%- else %}
    select
        raw_rows.symbol,
        raw_rows.ts,
        raw_rows.bid_price_1,
        raw_rows.ask_price_1
    from {{ raw }} as raw_rows
    {%- endif %}
),

quotes as (
    select
        symbol,
        time_bucket(interval '1 minute', ts) as minute_start,
        ts,
        {{ book_mid() }} as mid,
        ask_price_1 - bid_price_1 as spread
    from snapshots
),

final as (
    select
        symbol,
        minute_start as ts,
        (array_agg(mid order by ts) filter (where mid is not null))[1] as open,
        max(mid) as high,
        min(mid) as low,
        (array_agg(mid order by ts desc) filter (where mid is not null))[1] as close,
        null::double precision as volume,
        avg(spread) as spread,
        count(*)::integer as ticks
    from quotes
    group by symbol, minute_start
)

select * from final
