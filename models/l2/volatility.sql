{#- Return volatility of the mid (FEATURE_DEFINITIONS C1-C4, section S `volatility`). -#}
{%- set std_windows = [10, 50, 200] -%}
{%- set time_windows = {'1min': 60, '5min': 300} -%}
{%- set realized_windows = [10, 30, 100, 200, 500] -%}
-- depends_on: {{ ref('stg_l2_snapshots') }}
with

snapshots as (
    -- 500 returns need 501 mids; vol_of_vol needs 30 + 29 more rows of volatility_30
    {{ l2_snapshots_scoped(warmup_rows=501, warmup='5 minutes') }}
),

mids as (
    select
        symbol,
        ts,
        in_output,
        {{ book_mid() }} as mid,
        lag({{ book_mid() }}) {{ _symbol_window() }} as prev_mid
    from snapshots
),

returns as (
    select
        symbol,
        ts,
        in_output,
        {{ mid_log_return() }} as r,
        -- r as the exact sums add up (numeric, converted once; or as it is: native_windows)
        {{ exact_series(mid_log_return()) }} as r_exact
    from mids
    {{ evaluate_once(ordered=true) }}
),

running as (
    select
        returns.*,
        {{ running_moments('r_exact', 'r') }}
        {%- if not native_windows() %},
        -- RS+ sums the same exact squares as RV, so RS- = RV - RS+ is exact and never negative
        {{ running_sum('case when r > 0 then ' ~ _squared('r_exact') ~ ' end') }} as running_r2_up,
        {{ running_sum('r * r * r') }} as running_r3
        {%- endif %}
    from returns
),

running_before as (
    select
        running.*,
        {{ running_moments_before('r_exact', 'r') }}
    from running
),

windowed as (
    select
        symbol,
        ts,
        in_output,
        r,
        {%- for n in std_windows %}
        {{ rolling_stddev('r', n) }} as l2_volatility_{{ n }},
        {%- endfor %}
        {%- for name, seconds in time_windows.items() %}
        {{ time_stddev('r', seconds) }} as l2_volatility_{{ name }},
        {%- endfor %}
        {%- if native_windows() %}
        {#- exact sums of exact squares, each rounded once: RS- sums the negative returns'
            squares, which is RV - RS+ exactly (zero returns are in neither) -#}
        udf.time_window_sum(r_x, ts, 300, true) {{ _symbol_window() }} as r2_5min,
        udf.time_window_count(r_x, ts, 300) {{ _symbol_window() }} as n_5min,
        {%- for n in realized_windows %}
        {%- set full = 'udf.window_count(r_x, ' ~ n ~ ') ' ~ _symbol_window() ~ ' = ' ~ n %}
        case when {{ full }} then udf.window_sum(r_x, {{ n }}, true) {{ _symbol_window() }} end as rv_{{ n }},
        case when {{ full }} then udf.window_sum(case when r > 0 then r end, {{ n }}, true) {{ _symbol_window() }} end as rs_up_{{ n }},
        case when {{ full }} then udf.window_sum(case when r < 0 then r end, {{ n }}, true) {{ _symbol_window() }} end as rs_down_{{ n }},
        case when {{ full }} then udf.window_sum(r * r * r, {{ n }}, false) {{ _symbol_window() }} end as r3_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
        {%- else %}
        {#- the same window sums as l2_volatility_5min's: evaluated once -#}
        {{ time_window_sum('r_s2', 300) }} as r2_5min,
        {{ time_window_sum('r_n', 300, exact=true) }} as n_5min,
        {#- C1, C2 over complete windows: RV, RS+ and RS- = RV - RS+ (zero returns are in
            neither) exact in numeric, each converted to float8 once -#}
        {%- for n in realized_windows %}
        {%- set full = rows_window_full('r_n', n) %}
        {%- set rv = rows_window_sum('r_s2', n, exact=true) %}
        {%- set rs_up = rows_window_sum('running_r2_up', n, exact=true) %}
        case when {{ full }} then ({{ rv }})::double precision end as rv_{{ n }},
        case when {{ full }} then ({{ rs_up }})::double precision end as rs_up_{{ n }},
        case when {{ full }} then ({{ rv }} - {{ rs_up }})::double precision end as rs_down_{{ n }},
        case when {{ full }} then {{ rows_window_sum('running_r3', n) }} end as r3_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
        {%- endif %}
    from running_before
),

realized as (
    select
        windowed.*,
        {%- for n in realized_windows %}
        sqrt(rv_{{ n }}) as volatility_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from windowed
),

vol_30_moments as (
    select
        realized.*,
        {{ running_moments('volatility_30', 'vol_30') }}
    from realized
),

with_vol_of_vol as (
    select
        vol_30_moments.*,
        -- C4 with n = m = 30: std_s of the last 30 values of volatility_30
        {{ rolling_stddev('vol_30', 30) }} as vol_of_vol
    from vol_30_moments
),

final as (
    select
        symbol,
        ts,
        r as mid_price_return,
        r * r as squared_returns,
        {%- for n in std_windows %}
        l2_volatility_{{ n }},
        {%- endfor %}
        {%- for name in time_windows %}
        l2_volatility_{{ name }},
        {%- endfor %}
        case when n_5min > 0 then sqrt(r2_5min) end as realized_volatility,
        {%- for n in realized_windows %}
        volatility_{{ n }},
        {%- endfor %}
        {%- for n in realized_windows %}
        sqrt(rs_up_{{ n }}) as upside_vol_{{ n }},
        {%- endfor %}
        {%- for n in realized_windows %}
        sqrt(rs_down_{{ n }}) as downside_vol_{{ n }},
        {%- endfor %}
        {%- for n in realized_windows %}
        case when rv_{{ n }} > 0 then sqrt({{ n }}) * r3_{{ n }} / power(rv_{{ n }}, 1.5) end as vol_skew_{{ n }},
        {%- endfor %}
        vol_of_vol
    from with_vol_of_vol
    where in_output
)

select * from final
