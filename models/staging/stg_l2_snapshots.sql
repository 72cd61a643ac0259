with

snapshots as (
    select * from {{ source('market', 'l2_snapshots') }}
),

final as (
    select
        snapshots.*,

        -- quality flags -------------------------------------------------------------------
        snapshots.bid_price_1 >= snapshots.ask_price_1 as is_crossed,
        snapshots.bid_price_1 = snapshots.ask_price_1 as is_locked,
        {% for side in ['bid', 'ask'] -%}
        (
            {%- for i in range(1, 11) %}
            {{ '+ ' if not loop.first }}(snapshots.{{ side }}_price_{{ i }} is not null and snapshots.{{ side }}_size_{{ i }} is not null)::int
            {%- endfor %}
        ) as {{ side }}_levels_present,
        {% endfor -%}
        extract(
            epoch from snapshots.ts - lag(snapshots.ts) over (
                partition by snapshots.symbol order by snapshots.ts
            )
        )::double precision as seconds_since_prev
    from snapshots
)

select * from final
