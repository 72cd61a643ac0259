{#-
    Quote stability, spread and book-shape stability, depth concentration and book
    resilience (section S `stability`; A10; T4, T9, T10; docs/engine_definitions.md).
-#}
{%- set spread_windows = [10, 20, 50, 100] -%}
{%- set imbalance_levels = [3, 5, 10] -%}
-- depends_on: {{ ref('stg_l2_snapshots') }}
with

snapshots as (
    -- book_resilience looks back 1,000 rows, each judged against the 100 before it
    {{ l2_snapshots_scoped(warmup_rows=1100) }}
),

per_snapshot as (
    select
        symbol,
        ts,
        in_output,
        bid_price_1,
        ask_price_1,
        {{ book_spread() }} as spread,
        lag(ts) {{ _symbol_window() }} as prev_ts,
        (bid_price_1 is distinct from lag(bid_price_1) {{ _symbol_window() }})::int as bid_moved,
        (ask_price_1 is distinct from lag(ask_price_1) {{ _symbol_window() }})::int as ask_moved,
        {{ safe_divide(book_depth('bid', 5) ~ ' + ' ~ book_depth('ask', 5), 'bid_size_1 + ask_size_1') }}
            as book_shape_1_5,
        {{ safe_divide(book_depth('bid', 5), book_depth('ask', 5)) }} as depth_ratio,
        {%- for k in imbalance_levels %}
        {{ book_imbalance(k) }} as obi_{{ k }},
        {%- endfor %}
        {%- for side in ['bid', 'ask'] %}
        {{ safe_divide(
            book_sum_of_squares([side]),
            'power(' ~ book_depth(side, 10) ~ ', 2)'
        ) }} as {{ side }}_volume_concentration,
        {{ safe_divide(level_size(side, 1), book_depth(side, 10)) }} as {{ side }}_concentration,
        {%- endfor %}
        {{ safe_divide(
            book_sum_of_squares(),
            'power(' ~ book_depth('bid', 10) ~ ' + ' ~ book_depth('ask', 10) ~ ', 2)'
        ) }} as volume_concentration
    from snapshots
),

exact_terms as (
    -- the series the running moments add up, each converted to numeric once (native_windows)
    select
        per_snapshot.*,
        {{ exact_series('spread') }} as spread_exact,
        {{ exact_series('book_shape_1_5') }} as book_shape_exact,
        {{ exact_series('depth_ratio') }} as depth_ratio_exact,
        {%- for k in imbalance_levels %}
        {{ exact_series('obi_' ~ k) }} as obi_{{ k }}_exact{{ ',' if not loop.last }}
        {%- endfor %}
    from per_snapshot
    {{ evaluate_once(ordered=true) }}
),

moments as (
    select
        exact_terms.*,
        {{ running_moments('spread_exact', 'spread') }},
        {{ running_moments('book_shape_exact', 'book_shape') }},
        {{ running_moments('depth_ratio_exact', 'depth_ratio') }},
        {%- for k in imbalance_levels %}
        {{ running_moments('obi_' ~ k ~ '_exact', 'obi_' ~ k) }}{{ ',' if not loop.last }}
        {%- endfor %}
    from exact_terms
),

rolled as (
    -- the moments' own columns stay here: only what later steps read is carried on
    select
        symbol,
        ts,
        in_output,
        prev_ts,
        bid_moved,
        ask_moved,
        spread,
        book_shape_1_5,
        depth_ratio,
        bid_volume_concentration,
        ask_volume_concentration,
        volume_concentration,
        bid_concentration,
        ask_concentration,
        {%- for n in spread_windows %}
        {{ rolling_stddev('spread', n) }} as spread_stability_{{ n }},
        {{ rolling_mean('spread', n) }} as spread_mean_{{ n }},
        {%- endfor %}
        -- book resilience: mean and std_s of the 100 spreads before this row
        {{ rolling_mean('spread', 100, skip=1, exact=true) }} as spread_mean_100_before,
        {{ rolling_stddev('spread', 100, skip=1) }} as spread_std_100_before,
        {{ rolling_stddev('book_shape', 50) }} as book_shape_stability,
        {{ rolling_stddev('depth_ratio', 50) }} as depth_ratio_stability,
        {%- for k in imbalance_levels %}
        {{ rolling_stddev('obi_' ~ k, 50) }} as imbalance_stability_{{ k }}{{ ',' if not loop.last }}
        {%- endfor %}
    from moments
),

-- Quote lives (T10) -------------------------------------------------------------------------
-- Counted from the latest change. An incremental run starts at the last row the model
-- already holds (the anchor) and continues that row's stored lives.
anchored as (
    select
        symbol,
        ts,
        in_output,
        bid_moved,
        ask_moved,
        max(case when not in_output then ts end) over (partition by symbol) as anchor_ts
    from rolled
),

lives_scope as (
    select
        anchored.*,
        row_number() {{ _symbol_window() }} as seq
    from anchored
    where anchor_ts is null or ts >= anchor_ts
),

{% if is_incremental() -%}
anchors as (
    select distinct
        symbol,
        anchor_ts
    from anchored
    where anchor_ts is not null
),

-- one index lookup per symbol: as a join, the planner hashed the whole model instead
anchor_values as (
    select
        anchors.symbol,
        done.bid_life,
        done.ask_life,
        done.quote_life,
        done.bid_quote_lifetime,
        done.ask_quote_lifetime,
        done.quote_lifetime
    from anchors
    cross join lateral (
        select
            stored.bid_life,
            stored.ask_life,
            stored.quote_life,
            stored.bid_quote_lifetime,
            stored.ask_quote_lifetime,
            stored.quote_lifetime
        from {{ this }} as stored
        where stored.symbol = anchors.symbol and stored.ts = anchors.anchor_ts
        limit 1
    ) as done
),
{%- endif %}

last_changes as (
    select
        lives_scope.*,
        {%- for name, moved in [('bid', 'bid_moved = 1'), ('ask', 'ask_moved = 1'), ('quote', 'bid_moved = 1 or ask_moved = 1')] %}
        max(case when seq = 1 or {{ moved }} then seq end)
            {{ _symbol_window('rows between unbounded preceding and current row') }} as {{ name }}_change_seq,
        max(case when seq = 1 or {{ moved }} then ts end)
            {{ _symbol_window('rows between unbounded preceding and current row') }} as {{ name }}_change_ts{{ ',' if not loop.last }}
        {%- endfor %}
    from lives_scope
),

lives as (
    select
        last_changes.symbol,
        last_changes.ts,
        {%- for name, lifetime in [('bid', 'bid_quote_lifetime'), ('ask', 'ask_quote_lifetime'), ('quote', 'quote_lifetime')] %}
        last_changes.seq - last_changes.{{ name }}_change_seq
        {%- if is_incremental() %}
        + case when last_changes.{{ name }}_change_seq = 1 then coalesce(anchor_values.{{ name }}_life, 0) else 0 end
        {%- endif %} as {{ name }}_life,
        extract(epoch from last_changes.ts - last_changes.{{ name }}_change_ts)::double precision
        {%- if is_incremental() %}
        + case when last_changes.{{ name }}_change_seq = 1 then coalesce(anchor_values.{{ lifetime }}, 0) else 0 end
        {%- endif %} as {{ name }}_lifetime{{ ',' if not loop.last }}
        {%- endfor %}
    from last_changes
    {%- if is_incremental() %}
    left join anchor_values on last_changes.symbol = anchor_values.symbol
    {%- endif %}
),

-- Book resilience (docs/engine_definitions.md) ------------------------------------------------
flagged as (
    select
        symbol,
        ts,
        coalesce(spread > spread_mean_100_before + 2 * spread_std_100_before, false) as is_wide,
        coalesce(spread <= spread_mean_100_before, false) as is_calm
    from rolled
),

counted as (
    select
        flagged.*,
        count(case when is_wide then 1 end) {{ _symbol_window('rows between unbounded preceding and current row') }}
            as wide_count,
        count(case when is_calm then 1 end) {{ _symbol_window('rows between unbounded preceding and current row') }}
            as calm_count
    from flagged
),

calm_rows as (
    select
        symbol,
        ts,
        calm_count as calm_index,
        wide_count,
        lag(wide_count) {{ _symbol_window() }} as wide_count_at_previous_calm
    from counted
    where is_calm
),

recoveries as (
    select
        calm_rows.symbol,
        calm_rows.ts,
        extract(epoch from calm_rows.ts - first_wide.ts)::numeric as duration
    from calm_rows
    inner join counted as first_wide
        on
            calm_rows.symbol = first_wide.symbol
            and first_wide.is_wide
            and first_wide.wide_count = calm_rows.wide_count_at_previous_calm + 1
    where calm_rows.wide_count > calm_rows.wide_count_at_previous_calm
),

recovery_running as (
    select
        counted.symbol,
        counted.ts,
        counted.calm_count,
        sum(coalesce(recoveries.duration, 0)) over w_cum as recovered_seconds,
        count(recoveries.duration) over w_cum as recovered_count,
        lag(counted.calm_count, 1000, 0::bigint) over w as calm_count_before_window
    from counted
    left join recoveries on counted.symbol = recoveries.symbol and counted.ts = recoveries.ts
    window
        w as (partition by counted.symbol order by counted.ts),
        w_cum as (partition by counted.symbol order by counted.ts rows between unbounded preceding and current row)
),

calm_running as (
    select recovery_running.*
    from recovery_running
    inner join calm_rows
        on recovery_running.symbol = calm_rows.symbol and recovery_running.ts = calm_rows.ts
),

resilience as (
    select
        recovery_running.symbol,
        recovery_running.ts,
        -- recoveries ending by t whose previous calm row lies at or after t-999: those after
        -- the first calm row of the window
        {{ safe_divide(
            'recovery_running.recovered_seconds - window_start.recovered_seconds',
            'recovery_running.recovered_count - window_start.recovered_count'
        ) }}::double precision as book_resilience
    from recovery_running
    left join calm_running as window_start
        on
            recovery_running.symbol = window_start.symbol
            and recovery_running.calm_count_before_window + 1 = window_start.calm_count
            and recovery_running.ts >= window_start.ts
),

final as (
    select
        rolled.symbol,
        rolled.ts,
        case when rolled.prev_ts is not null then rolled.bid_moved end as bid_change,
        case when rolled.prev_ts is not null then rolled.ask_moved end as ask_change,
        lives.bid_life,
        lives.ask_life,
        lives.quote_life,
        lives.bid_lifetime as bid_quote_lifetime,
        lives.ask_lifetime as ask_quote_lifetime,
        lives.quote_lifetime,
        {%- for n in spread_windows %}
        rolled.spread_stability_{{ n }},
        {%- endfor %}
        {%- for n in spread_windows %}
        {{ safe_divide('rolled.spread_stability_' ~ n, 'rolled.spread_mean_' ~ n) }}
            as spread_stability_norm_{{ n }},
        {%- endfor %}
        rolled.book_shape_1_5,
        rolled.book_shape_stability,
        rolled.bid_volume_concentration,
        rolled.ask_volume_concentration,
        rolled.volume_concentration,
        rolled.bid_concentration,
        rolled.ask_concentration,
        rolled.depth_ratio,
        rolled.depth_ratio_stability,
        {%- for k in imbalance_levels %}
        rolled.imbalance_stability_{{ k }},
        {%- endfor %}
        resilience.book_resilience
    from rolled
    left join lives on rolled.symbol = lives.symbol and rolled.ts = lives.ts
    left join resilience on rolled.symbol = resilience.symbol and rolled.ts = resilience.ts
    where rolled.in_output
)

select * from final
