{#- Depth pressure over the 10 visible levels (section S `book_pressure`, A9; T4). -#}
-- depends_on: {{ ref('stg_l2_snapshots') }}
with

snapshots as (
    {{ l2_snapshots_scoped() }}
),

depths as (
    select
        symbol,
        ts,
        in_output,
        {{ book_depth('bid', 10) }} as bid_depth,
        {{ book_depth('ask', 10) }} as ask_depth,
        (
            {%- for i in range(1, 11) %}
            {{ '+ ' if not loop.first }}{{ level_size('bid', i) }} / {{ i }}.0
            {%- endfor %}
        ) as bid_depth_weighted,
        (
            {%- for i in range(1, 11) %}
            {{ '+ ' if not loop.first }}{{ level_size('ask', i) }} / {{ i }}.0
            {%- endfor %}
        ) as ask_depth_weighted
    from snapshots
    {{ evaluate_once() }}
),

pressures as (
    select
        symbol,
        ts,
        in_output,
        bid_depth,
        ask_depth,
        {{ safe_divide('bid_depth', 'bid_depth + ask_depth') }} as bid_pressure,
        {{ safe_divide('bid_depth_weighted', 'bid_depth_weighted + ask_depth_weighted') }}
            as bid_pressure_weighted
    from depths
    {{ evaluate_once() }}
),

final as (
    select
        symbol,
        ts,
        bid_pressure,
        1 - bid_pressure as ask_pressure,
        bid_pressure_weighted,
        1 - bid_pressure_weighted as ask_pressure_weighted,
        bid_pressure - (1 - bid_pressure) as pressure_imbalance,
        bid_pressure_weighted - (1 - bid_pressure_weighted) as pressure_imbalance_weighted,
        case
            when bid_depth > 0 and ask_depth > 0 then ln(bid_depth) - ln(ask_depth)
        end as book_depth_asymmetry
    from pressures
    where in_output
)

select * from final
