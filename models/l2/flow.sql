{#- Order-flow persistence and balance (section S `flow`; B1, B4; T13, T14). -#}
{%- set windows = [10, 30, 100, 300] -%}
{%- set ratio_levels = [1, 2, 3, 4, 5] -%}
{%- set level_flow_abs_sum -%}
    {%- for m in ratio_levels %}{{ ' + ' if not loop.first }}abs(windowed.mlofi_{{ m }}){% endfor -%}
{%- endset -%}
with

-- 300 rows: the longest row window (flow_imbalance_300) of the first new row; the EMAs
-- continue from their stored state (flow_ewm_state), which needs no warm-up
snapshots as (
    {{ l2_snapshots_scoped(
        warmup_rows=300,
        extra_read_from="(select nonzero.ts from " ~ ref('ofi') ~ " as nonzero"
            ~ " where nonzero.symbol = scope.symbol and nonzero.ts < scope.from_ts"
            ~ " and nonzero.ofi_event <> 0 order by nonzero.ts desc limit 1 offset 101)"
    ) }}
),

paired as (
    select
        snapshots.*,
        {{ previous_level(5) }}
    from snapshots
),

events as (
    select
        symbol,
        ts,
        in_output,
        {{ event_ofi(1) }} as e_n,
        {%- for m in ratio_levels %}
        {{ event_ofi(m, empty_levels=true) }} as e_{{ m }}{{ ',' if not loop.last }}
        {%- endfor %}
    from paired
    {{ evaluate_once(ordered=true) }}
),

running as (
    {%- if native_windows() %}
    select events.*
    {%- else %}
    select
        events.*,
        {{ running_count('e_n') }} as running_n,
        {{ running_sum('e_n') }} as running_e,
        {{ running_sum('abs(e_n)') }} as running_abs_e,
        {{ running_count('e_1') }} as running_levels_n,
        {%- for m in ratio_levels %}
        {{ running_sum('e_' ~ m) }} as running_e_{{ m }}{{ ',' if not loop.last }}
        {%- endfor %}
    {%- endif %}
    from events
),

-- the EMAs of the rows written (T13), each symbol's range read by index
emas as (
    {%- if is_incremental() %}
    select stored.*
    from (
        select symbol, min(ts) as from_ts from events where in_output group by symbol
    ) as output_start
    cross join lateral (
        select
            ema.symbol,
            ema.ts,
            ema.ewm_state
        from {{ ref('flow_ewm_state') }} as ema
        where ema.symbol = output_start.symbol and ema.ts >= output_start.from_ts
        offset 0
    ) as stored
    {%- else %}
    select
        ema.symbol,
        ema.ts,
        ema.ewm_state
    from {{ ref('flow_ewm_state') }} as ema
    {%- endif %}
),

-- T14: persistence over the sequence of non-zero e_n only
nonzero_events as (
    select
        symbol,
        ts,
        (sign(e_n) = sign(lag(e_n) {{ _symbol_window() }}))::int as same_sign
    from running
    where e_n <> 0
),

persistence as (
    select
        symbol,
        ts,
        case
            when count(same_sign) {{ _symbol_window('rows between 99 preceding and current row') }} = 100
                then avg(same_sign) {{ _symbol_window('rows between 99 preceding and current row') }}
        end as flow_persistence
    from nonzero_events
),

windowed as (
    select
        running.symbol,
        running.ts,
        running.in_output,
        {%- if native_windows() %}
        {#- exact window sums of the series themselves, each rounded once -#}
        {%- for n in windows %}
        case when udf.window_count(running.e_n, {{ n }}) {{ _symbol_window() }} = {{ n }} then
            {{ safe_divide(
                'udf.window_sum(running.e_n, ' ~ n ~ ', false) ' ~ _symbol_window(),
                'udf.window_sum(abs(running.e_n), ' ~ n ~ ', false) ' ~ _symbol_window()
            ) }}
        end as flow_imbalance_{{ n }},
        {%- endfor %}
        {%- for m in ratio_levels %}
        case when udf.window_count(running.e_1, 100) {{ _symbol_window() }} = 100 then
            udf.window_sum(running.e_{{ m }}, 100, false) {{ _symbol_window() }}
        end as mlofi_{{ m }},
        {%- endfor %}
        {%- else %}
        {%- for n in windows %}
        case when {{ rows_window_full('running.running_n', n) }} then
            {{ safe_divide(rows_window_sum('running.running_e', n), rows_window_sum('running.running_abs_e', n)) }}
        end as flow_imbalance_{{ n }},
        {%- endfor %}
        -- MLOFI^m over the last 100 rows (B4), NULL until 100 rows with a previous snapshot exist
        {%- for m in ratio_levels %}
        case when {{ rows_window_full('running.running_levels_n', 100) }} then
            {{ rows_window_sum('running.running_e_' ~ m, 100) }}
        end as mlofi_{{ m }},
        {%- endfor %}
        {%- endif %}
        running.e_n <> 0 as is_event
    from running
),

carried as (
    select
        windowed.*,
        {%- for k in ratio_levels %}
        {{ safe_divide('windowed.mlofi_' ~ k, level_flow_abs_sum) }} as level_{{ k }}_flow_ratio,
        {%- endfor %}
        persistence.flow_persistence as event_persistence,
        -- rows since (and including) the latest non-zero event share a group
        count(case when windowed.is_event then 1 end) over (
            partition by windowed.symbol order by windowed.ts rows between unbounded preceding and current row
        ) as event_group
    from windowed
    left join persistence on windowed.symbol = persistence.symbol and windowed.ts = persistence.ts
),

persisted as (
    select
        carried.*,
        -- T14: the latest event's value, carried across rows whose e_n is zero or NULL. A
        -- window of its own, before the output filter: a WHERE in the same SELECT would drop
        -- the event that opens the first output rows' group when it lies in the warm-up
        max(carried.event_persistence) over (
            partition by carried.symbol, carried.event_group
        ) as flow_persistence
    from carried
),

final as (
    select
        persisted.symbol,
        persisted.ts,
        {%- for n in windows %}
        persisted.flow_imbalance_{{ n }},
        {%- endfor %}
        {%- for n in windows %}
        {{ safe_divide('emas.ewm_state[' ~ loop.index ~ ']', 'emas.ewm_state[' ~ (loop.index + windows | length) ~ ']') }}
            as flow_imbalance_ema_{{ n }},
        {%- endfor %}
        {%- for k in ratio_levels %}
        persisted.level_{{ k }}_flow_ratio,
        {%- endfor %}
        persisted.flow_persistence
    from persisted
    -- a row flow_ewm_state has not computed yet (written after its run began) waits for the
    -- next refresh: flow takes only the writes flow_ewm_state has processed (refresh_after)
    inner join emas on persisted.symbol = emas.symbol and persisted.ts = emas.ts
    where persisted.in_output
)

select * from final
