{#- Trend and range regime of the mid (FEATURE_DEFINITIONS D1-D3, section S `regime`). -#}
{%- set er_windows = [50, 100, 200] -%}
{%- set net_windows = [30, 50, 100, 200] -%}
{%- set trend_windows = [30, 100] -%}
{%- set range_windows = [50, 100] -%}
-- depends_on: {{ ref('stg_l2_snapshots') }}
with

snapshots as (
    {{ l2_snapshots_scoped(warmup_rows=201) }}
),

mids as (
    select
        symbol,
        ts,
        in_output,
        {{ book_mid() }} as mid,
        ln({{ book_mid() }}) as log_mid,
        row_number() {{ _symbol_window() }} as row_index
    from snapshots
),

{{ rows_window_extremes('mids', 'mid', range_windows) }},

centred as (
    -- ln m less a constant of the symbol: D2's fit is unchanged by the shift, and the small
    -- differences convert to numeric without losing the digits that the fit depends on
    -- (the native window functions sum ln m exactly as it is: no shift needed)
    {%- if native_windows() %}
    select mid_extremes.*
    {%- else %}
    select
        mid_extremes.*,
        log_mid - max(log_mid) over (partition by symbol) as y
    {%- endif %}
    from mid_extremes
),

moves as (
    select
        centred.*,
        mid - lag(mid) {{ _symbol_window() }} as mid_change,
        {{ mid_log_return('mid', 'lag(mid) ' ~ _symbol_window()) }} as r
        {%- if not native_windows() %},
        -- y exactly as numeric, converted once for the three sums that read it
        {{ exact_numeric('y') }} as y_exact
        {%- endif %}
    from centred
),

{% if native_windows() -%}
-- exact window sums of the series themselves, each rounded once; D2 from exact sums of
-- ln m (udf.window_trend_strength), which no shift changes
windowed as (
    select
        symbol,
        ts,
        in_output,
        mid,
        {%- for n in net_windows %}
        mid - lag(mid, {{ n }}) {{ _symbol_window() }} as net_{{ n }},
        {%- endfor %}
        {%- for n in er_windows %}
        case
            when udf.window_count(mid_change, {{ n }}) {{ _symbol_window() }} = {{ n }}
                then udf.window_sum(abs(mid_change), {{ n }}, false) {{ _symbol_window() }}
        end as path_{{ n }},
        {%- endfor %}
        {%- for n in trend_windows %}
        udf.window_trend_strength(log_mid, {{ n }}) {{ _symbol_window() }} as trend_{{ n }},
        case when udf.window_count(mid_change, {{ n }}) {{ _symbol_window() }} = {{ n }} then
            udf.window_count(case when r > 0 then r end, {{ n }}) {{ _symbol_window() }}::double precision
        end as ups_{{ n }},
        case when udf.window_count(mid_change, {{ n }}) {{ _symbol_window() }} = {{ n }} then
            udf.window_count(case when r < 0 then r end, {{ n }}) {{ _symbol_window() }}::double precision
        end as downs_{{ n }},
        {%- endfor %}
        {%- for n in range_windows %}
        case when udf.window_count(log_mid, {{ n }}) {{ _symbol_window() }} = {{ n }} then
            mid_max_{{ n }}
        end as high_{{ n }},
        case when udf.window_count(log_mid, {{ n }}) {{ _symbol_window() }} = {{ n }} then
            mid_min_{{ n }}
        end as low_{{ n }},
        case when udf.window_count(log_mid, {{ n }}) {{ _symbol_window() }} = {{ n }} then
            udf.window_sum(mid, {{ n }}, false) {{ _symbol_window() }} / {{ n }}
        end as mean_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from moves
),
{%- else -%}

running as (
    select
        moves.*,
        {{ running_sum('abs(mid_change)') }} as running_path,
        {{ running_count('mid_change') }} as running_moves,
        {{ running_count('y') }} as running_mids,
        {{ running_sum('mid') }} as running_mid,
        {{ running_sum('y_exact') }} as running_y,
        {{ running_sum('y_exact * y_exact') }} as running_y2,
        {{ running_sum('row_index * y_exact') }} as running_jy,
        {{ running_sum('case when r > 0 then 1 end') }} as running_up,
        {{ running_sum('case when r < 0 then 1 end') }} as running_down
    from moves
),

windowed as (
    select
        symbol,
        ts,
        in_output,
        mid,
        {%- for n in net_windows %}
        mid - lag(mid, {{ n }}) {{ _symbol_window() }} as net_{{ n }},
        {%- endfor %}
        {%- for n in er_windows %}
        case
            when {{ rows_window_full('running_moves', n) }}
                then {{ rows_window_sum('running_path', n) }}
        end as path_{{ n }},
        {%- endfor %}
        {%- for n in trend_windows %}
        -- D2 with x = 0..n-1 = row_index - (first row's index): exact numeric window sums
        case when {{ rows_window_full('running_mids', n) }} then
            {{ rows_window_sum('running_jy', n, exact=true) }}
            - (row_index - {{ n - 1 }}) * {{ rows_window_sum('running_y', n, exact=true) }}
            - {{ (n - 1) / 2 }} * {{ rows_window_sum('running_y', n, exact=true) }}
        end as sxy_{{ n }},
        case when {{ rows_window_full('running_mids', n) }} then
            -- products, not power(): numeric power() keeps only about 16 significant digits
            {{ rows_window_sum('running_y2', n, exact=true) }}
            - {{ rows_window_sum('running_y', n, exact=true) }} * {{ rows_window_sum('running_y', n, exact=true) }} / {{ n }}
        end as syy_{{ n }},
        case when {{ rows_window_full('running_moves', n) }} then
            {{ rows_window_sum('running_up', n) }}
        end as ups_{{ n }},
        case when {{ rows_window_full('running_moves', n) }} then
            {{ rows_window_sum('running_down', n) }}
        end as downs_{{ n }},
        {%- endfor %}
        {%- for n in range_windows %}
        case when {{ rows_window_full('running_mids', n) }} then
            mid_max_{{ n }}
        end as high_{{ n }},
        case when {{ rows_window_full('running_mids', n) }} then
            mid_min_{{ n }}
        end as low_{{ n }},
        case when {{ rows_window_full('running_mids', n) }} then
            {{ rows_window_sum('running_mid', n) }} / {{ n }}
        end as mean_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from running
),
{%- endif %}

final as (
    select
        symbol,
        ts,
        {%- for n in er_windows %}
        case
            when path_{{ n }} = 0 then 0
            else abs(net_{{ n }}) / path_{{ n }}
        end as efficiency_ratio_{{ n }},
        {%- endfor %}
        {%- for n in trend_windows %}
        {%- if native_windows() %}
        trend_{{ n }} as trend_strength_{{ n }},
        {%- else %}
        case
            when syy_{{ n }} = 0 then 0
            else (sxy_{{ n }} * sxy_{{ n }} / ({{ n * (n * n - 1) / 12 }} * syy_{{ n }}))::double precision
        end as trend_strength_{{ n }},
        {%- endif %}
        {%- endfor %}
        {%- for n in trend_windows %}
        case
            when net_{{ n }} > 0 then ups_{{ n }} / {{ n }}
            when net_{{ n }} < 0 then downs_{{ n }} / {{ n }}
            when net_{{ n }} = 0 and ups_{{ n }} is not null then 0
        end as trend_consistency_{{ n }},
        {%- endfor %}
        {%- for n in range_windows %}
        (high_{{ n }} - low_{{ n }}) / mean_{{ n }} as range_pct_{{ n }},
        {%- endfor %}
        {%- for n in range_windows %}
        case
            when high_{{ n }} = low_{{ n }} then 0.5
            else (mid - low_{{ n }}) / (high_{{ n }} - low_{{ n }})
        end as range_position_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from windowed
    where in_output
)

select * from final
