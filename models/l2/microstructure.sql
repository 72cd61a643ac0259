{#- Snapshot-level order-book features (FEATURE_DEFINITIONS sections A and S). -#}
-- depends_on: {{ ref('stg_l2_snapshots') }}
with

snapshots as (
    {{ l2_snapshots_scoped() }}
),

symbols as (
    select * from {{ ref('symbols') }}
),

sized as (
    select
        snapshots.*,
        coalesce(
            symbols.impact_order_size, {{ var('default_impact_order_size') }}
        ) as impact_order_size
    from snapshots
    left join symbols on snapshots.symbol = symbols.symbol
),

walked as (
    select
        sized.*,
        {{ book_mid('sized') }} as mid,
        {{ book_spread('sized') }} as spread,
        {{ book_walk_vwap('ask', 'sized.impact_order_size', 'sized') }} as vwap_buy,
        {{ book_walk_vwap('bid', 'sized.impact_order_size', 'sized') }} as vwap_sell,
        {{ book_depth('bid', 5, 'sized') }} as bid_depth_5,
        {{ book_depth('ask', 5, 'sized') }} as ask_depth_5,
        {{ book_notional('bid', 5, 'sized') }} as bid_notional_5,
        {{ book_notional('ask', 5, 'sized') }} as ask_notional_5,
        {{ book_depth('bid', 10, 'sized') }} as bid_depth_10,
        {{ book_depth('ask', 10, 'sized') }} as ask_depth_10
    from sized
    {{ evaluate_once() }}
),

final as (
    select
        walked.symbol,
        walked.ts,

        -- prices and spread --------------------------------------------------------------
        walked.mid as mid_price,
        walked.spread as bid_ask_spread,
        100 * {{ safe_divide('walked.spread', 'walked.mid') }} as bid_ask_spread_pct,
        10000 * {{ safe_divide('walked.spread', 'walked.mid') }} as spread_bps,
        {{ safe_divide(
            'walked.bid_price_1 * walked.ask_size_1 + walked.ask_price_1 * walked.bid_size_1',
            'walked.bid_size_1 + walked.ask_size_1'
        ) }} as microprice,
        case
            when walked.bid_depth_5 > 0 and walked.ask_depth_5 > 0
                then (
                    walked.bid_notional_5 / walked.bid_depth_5 * walked.ask_depth_5
                    + walked.ask_notional_5 / walked.ask_depth_5 * walked.bid_depth_5
                ) / (walked.bid_depth_5 + walked.ask_depth_5)
        end as weighted_mid_price,

        -- imbalance ----------------------------------------------------------------------
        {{ book_imbalance(1, 'walked') }} as order_book_imbalance,
        {%- for k in [2, 3, 5, 10] %}
        {{ book_imbalance(k, 'walked') }} as order_book_imbalance_{{ k }},
        {%- endfor %}

        -- cumulative depth ---------------------------------------------------------------
        {%- for side in ['bid', 'ask'] %}
        {%- for k in range(1, 11) %}
        {{ book_depth(side, k, 'walked') }} as total_{{ side }}_volume_{{ k }},
        {%- endfor %}
        {%- endfor %}

        -- price impact of impact_order_size ----------------------------------------------
        {{ safe_divide('walked.vwap_buy - walked.mid', 'walked.mid') }} as price_impact_buy,
        {{ safe_divide('walked.mid - walked.vwap_sell', 'walked.mid') }} as price_impact_sell,
        least(walked.ask_depth_10 / walked.impact_order_size, 1.0) as impact_fill_ratio_buy,
        least(walked.bid_depth_10 / walked.impact_order_size, 1.0) as impact_fill_ratio_sell,
        {{ safe_divide('walked.vwap_buy - walked.ask_price_1', 'walked.ask_price_1') }}
            as price_impact_ask,
        {{ safe_divide('walked.bid_price_1 - walked.vwap_sell', 'walked.bid_price_1') }}
            as price_impact_bid,
        {%- for k in [1, 5, 10] %}
        {{ safe_divide(
            'walked.ask_price_' ~ k ~ ' - walked.bid_price_' ~ k, '2 * walked.mid'
        ) }} as price_impact_{{ k }},
        {%- endfor %}

        -- flags --------------------------------------------------------------------------
        walked.bid_price_1 >= walked.ask_price_1 as is_crossed
    from walked
    where walked.in_output
)

select * from final
