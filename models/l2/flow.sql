{#- Order-flow persistence and balance (section S `flow`; B1, B4; T13, T14). -#}
{%- set windows = [10, 30, 100, 300] -%}
{%- set ratio_levels = [1, 2, 3, 4, 5] -%}
{%- set level_flow_abs_sum -%}
    {%- for m in ratio_levels %}{{ ' + ' if not loop.first }}abs(windowed.mlofi_{{ m }}){% endfor -%}
{%- endset -%}
{#- EMA of span N forgets at (1 - 2/(N+1))^rows: 6,400 rows bring span 300's below 1e-18. -#}
with

snapshots as (
    {{ l2_snapshots_scoped(
        warmup_rows=6400,
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
    select
        events.*,
        {{ running_count('e_n') }} as running_n,
        {{ running_sum('e_n') }} as running_e,
        {{ running_sum('abs(e_n)') }} as running_abs_e,
        {{ running_count('e_1') }} as running_levels_n,
        {%- for m in ratio_levels %}
        {{ running_sum('e_' ~ m) }} as running_e_{{ m }},
        {%- endfor %}
        udf.ewm_means(
            array[{% for n in windows %}e_n, {% endfor %}{% for n in windows %}abs(e_n){{ ', ' if not loop.last }}{% endfor %}],
            array[{% for n in windows * 2 %}2.0 / {{ n + 1 }}{{ ', ' if not loop.last }}{% endfor %}]::double precision[]
        ) {{ _symbol_window('rows between unbounded preceding and current row') }} as emas
    from events
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
        {%- for n in windows %}
        case when {{ rows_window_full('running.running_n', n) }} then
            {{ safe_divide(rows_window_sum('running.running_e', n), rows_window_sum('running.running_abs_e', n)) }}
        end as flow_imbalance_{{ n }},
        {%- endfor %}
        {%- for n in windows %}
        {{ safe_divide('running.emas[' ~ loop.index ~ ']', 'running.emas[' ~ (loop.index + windows | length) ~ ']') }}
            as flow_imbalance_ema_{{ n }},
        {%- endfor %}
        -- MLOFI^m over the last 100 rows (B4), NULL until 100 rows with a previous snapshot exist
        {%- for m in ratio_levels %}
        case when {{ rows_window_full('running.running_levels_n', 100) }} then
            {{ rows_window_sum('running.running_e_' ~ m, 100) }}
        end as mlofi_{{ m }},
        {%- endfor %}
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
        symbol,
        ts,
        {%- for n in windows %}
        flow_imbalance_{{ n }},
        {%- endfor %}
        {%- for n in windows %}
        flow_imbalance_ema_{{ n }},
        {%- endfor %}
        {%- for k in ratio_levels %}
        level_{{ k }}_flow_ratio,
        {%- endfor %}
        flow_persistence
    from persisted
    where in_output
)

select * from final
