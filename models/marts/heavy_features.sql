{#-
    The heavy-math families carried forward to snapshots: for each snapshot, every family's
    newest window whose stamp is at or before the snapshot's ts (so no value is used before its
    window has ended), plus the hht columns that combine HHT with the snapshot's own OFI and
    book imbalance. A view: always current.
-#}
{{ config(materialized='view') }}
with

snapshots as (
    select
        microstructure.symbol,
        microstructure.ts,
        microstructure.order_book_imbalance_5,
        ofi.ofi_10s,
        ofi.ofi_30s,
        ofi.ofi_1m
    from {{ ref('microstructure') }} as microstructure
    inner join {{ ref('ofi') }} as ofi
        on microstructure.symbol = ofi.symbol and microstructure.ts = ofi.ts
),

carried as (
    select
        snapshots.*
        {%- for family in heavy_family_models() %},
        {{ family }}.ts as {{ family }}_window_end
        {%- for column in documented_columns(family) if column.name not in ('symbol', 'ts') %},
        {{ family }}.{{ column.name }}
        {%- endfor %}
        {%- endfor %}
    from snapshots
    {%- for family in heavy_family_models() %}
    left join lateral (
        select * from {{ ref(family) }} as stamped
        where stamped.symbol = snapshots.symbol and stamped.ts <= snapshots.ts
        order by stamped.ts desc
        limit 1
    ) as {{ family }} on true
    {%- endfor %}
),

final as (
    select
        carried.*,
        {%- for horizon in ['10s', '30s', '1m'] %}
        case
            when carried.ofi_{{ horizon }} is null or carried.hht_market_state is null then null
            when carried.hht_market_state <> 0 and sign(carried.ofi_{{ horizon }}) = carried.hht_market_state
                then carried.ofi_{{ horizon }}
            else 0
        end as ofi_{{ horizon }}_hht_qualified,
        {%- endfor %}
        case
            when carried.order_book_imbalance_5 is null or carried.hht_market_state is null then null
            when carried.hht_market_state <> 0 and sign(carried.order_book_imbalance_5) = carried.hht_market_state then 1
            else 0
        end as obi_trend_aligned,
        (sign(carried.ofi_10s) + sign(carried.order_book_imbalance_5) + carried.hht_market_state)
        / 3.0 as l2_hht_signal_confluence
    from carried
)

select * from final
