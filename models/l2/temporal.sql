{#- Update activity, unusual size and momentum (section S `temporal`; T3, T9, T11, T12). -#}
{%- set intensity_windows = [50, 100, 300] -%}
{%- set momentum_windows = [10, 30, 100] -%}
-- depends_on: {{ ref('stg_l2_snapshots') }}
with

snapshots as (
    {{ l2_snapshots_scoped(warmup_rows=300) }}
),

paired as (
    select
        snapshots.*,
        {{ previous_level(10) }}
    from snapshots
),

per_snapshot as (
    select
        symbol,
        ts,
        in_output,
        bid_size_1,
        ask_size_1,
        {{ book_mid() }} as mid,
        {{ book_imbalance(5) }} as obi_5,
        -- T9: fields that differ from the previous snapshot (NULL on the first snapshot)
        case when prev_ts is not null then
            {%- for side in ['bid', 'ask'] %}{% for kind in ['price', 'size'] %}{% for i in range(1, 11) %}
            {{ '+ ' if not (loop.first and side == 'bid' and kind == 'price') }}({{ side }}_{{ kind }}_{{ i }} is distinct from prev_{{ side }}_{{ kind }}_{{ i }})::int
            {%- endfor %}{% endfor %}{% endfor %}
        end as book_updates,
        -- engine definition (docs/engine_definitions.md): share of present level sizes
        -- (price set, size > 0) that are whole numbers
        {{ safe_divide(present_levels(whole_sizes=true), present_levels()) }} as size_clustering
    from paired
    {{ evaluate_once(ordered=true) }}
),

running as (
    select
        per_snapshot.*,
        {{ running_sum('book_updates') }} as running_updates,
        {{ running_moments('bid_size_1', 'bid_size_1') }},
        {{ running_moments('ask_size_1', 'ask_size_1') }},
        {{ running_count('book_updates') }} as running_update_rows
    from per_snapshot
),

computed as (
    select
        symbol,
        ts,
        in_output,
        book_updates,
        {%- for n in intensity_windows %}
        case when {{ rows_window_full('running_update_rows', n) }} then
            {{ safe_divide(
                rows_window_sum('running_updates', n),
                'extract(epoch from ts - lag(ts, ' ~ (n - 1) ~ ') ' ~ _symbol_window() ~ ')::double precision'
            ) }}
        end as update_intensity_{{ n }},
        {%- endfor %}
        {%- for side in ['bid', 'ask'] %}
        -- T12: above mean + 2 std_s of the 100 sizes before this one
        {%- set mean = rolling_mean(side ~ '_size_1', 100, skip=1, exact=true) %}
        {#- the 100 sizes are all there (native: the mean is, an identical window call) -#}
        {%- set full = mean ~ ' is not null' if native_windows() else rows_window_full(side ~ '_size_1_n', 100, skip=1) %}
        case
            when {{ side }}_size_1 is not null and {{ full }}
                then ({{ side }}_size_1 > (
                    {{ mean }}
                    + 2 * {{ rolling_stddev(side ~ '_size_1', 100, skip=1) }}
                ))::int
        end as large_{{ side }},
        {%- endfor %}
        size_clustering,
        {%- for n in momentum_windows %}
        {{ mid_log_return('mid', 'lag(mid, ' ~ n ~ ') ' ~ _symbol_window()) }} as price_momentum_{{ n }},
        {%- endfor %}
        {%- for n in momentum_windows %}
        obi_5 - lag(obi_5, {{ n }}) {{ _symbol_window() }} as imbalance_momentum_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from running
),

final as (
    select
        symbol,
        ts,
        book_updates,
        {%- for n in intensity_windows %}
        update_intensity_{{ n }},
        {%- endfor %}
        large_bid,
        large_ask,
        size_clustering,
        {%- for n in momentum_windows %}
        price_momentum_{{ n }},
        {%- endfor %}
        {%- for n in momentum_windows %}
        imbalance_momentum_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from computed
    where in_output
)

select * from final
