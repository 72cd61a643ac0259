{#-
    Forward-looking labels (section S `targets`, T16): the only model that looks ahead. A
    refresh rewrites the last 5 minutes before the new rows as well, whose horizons the new
    rows complete.
-#}
{%- set horizons = {'1min': '1 minute', '5min': '5 minutes'} -%}
-- depends_on: {{ ref('stg_l2_snapshots') }}
with

snapshots as (
    {{ l2_snapshots_scoped(warmup_rows=1, lookahead='5 minutes') }}
),

mids as (
    select
        symbol,
        ts,
        in_output,
        {{ book_mid() }} as mid,
        {{ book_spread() }} as spread,
        max(ts) over (partition by symbol) as last_ts
    from snapshots
),

returns as (
    select
        mids.*,
        {{ mid_log_return('mid', 'lag(mid) ' ~ _symbol_window()) }} as r
    from mids
),

horizons as (
    select
        returns.*,
        {%- for name, interval in horizons.items() %}
        -- the mid of the last snapshot at or before ts + W
        last_value(mid) {{ _symbol_window("range between current row and interval '" ~ interval ~ "' following") }}
            as mid_{{ name }},
        {%- endfor %}
        stddev_samp(r::numeric) {{ _symbol_window("range between interval '1 microsecond' following and interval '5 minutes' following") }}::double precision
            as target_volatility
    from returns
),

labelled as (
    select
        horizons.*,
        {%- for name, interval in horizons.items() %}
        case
            when last_ts > ts + interval '{{ interval }}'
                then {{ mid_log_return('mid_' ~ name, 'mid') }}
        end as target_return_{{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from horizons
),

final as (
    select
        symbol,
        ts,
        target_return_1min,
        target_return_5min,
        target_volatility,
        case
            when target_return_1min > spread / (2 * mid) then 1
            when target_return_1min < -spread / (2 * mid) then -1
            when target_return_1min is not null and spread is not null then 0
        end as target_direction
    from labelled
    where in_output
)

select * from final
