{#- Order flow imbalance (FEATURE_DEFINITIONS B1-B4, section S `ofi`). -#}
{%- set windows = {'10s': 10, '30s': 30, '1m': 60, '5m': 300} -%}
{%- set level_weights = [1, 2, 3, 4, 5] -%}
-- depends_on: {{ ref('stg_l2_snapshots') }}
with

snapshots as (
    {{ l2_snapshots_scoped(warmup_rows=1, warmup='5 minutes') }}
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
        {{ event_ofi(1) }} as ofi_event,
        -- level-1 depth (q^B + q^A)/2 of the snapshots whose e_n counts (B3, T8)
        case when {{ event_ofi(1) }} is not null then (bid_size_1 + ask_size_1) / 2 end
            as event_depth,
        -- B4 multi-level OFI, weighted 1/m over levels 1..5 (engine convention)
        (
            {%- for m in level_weights %}
            {{ '+ ' if not loop.first }}{{ event_ofi(m, empty_levels=true) }} / {{ m }}.0
            {%- endfor %}
        ) / (
            {%- for m in level_weights %}{{ ' + ' if not loop.first }}1.0 / {{ m }}{% endfor -%}
        )::double precision as weighted_event
    from paired
    {{ evaluate_once(ordered=true) }}
),

{% if native_windows() -%}
-- exact window sums of the series themselves (native_windows), each rounded once
windowed as (
    select
        symbol,
        ts,
        in_output,
        ofi_event,
        {%- for name, seconds in windows.items() %}
        udf.time_window_sum(ofi_event, ts, {{ seconds }}, false) {{ _symbol_window() }} as ofi_{{ name }},
        udf.time_window_sum(event_depth, ts, {{ seconds }}, false) {{ _symbol_window() }} as depth_{{ name }},
        udf.time_window_count(ofi_event, ts, {{ seconds }}) {{ _symbol_window() }} as events_{{ name }},
        udf.time_window_sum(weighted_event, ts, {{ seconds }}, false) {{ _symbol_window() }} as ofi_weighted_{{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from events
),
{%- else -%}
running as (
    select
        events.*,
        {{ running_sum('ofi_event') }} as running_ofi,
        {{ running_sum('event_depth') }} as running_depth,
        {{ running_count('ofi_event') }} as running_events,
        {{ running_sum('weighted_event') }} as running_weighted
    from events
),

running_before as (
    select
        running.*,
        {{ running_sum_before('running_ofi', 'ofi_event') }} as running_ofi_before,
        {{ running_sum_before('running_depth', 'event_depth') }} as running_depth_before,
        {{ running_count_before('running_events', 'ofi_event') }} as running_events_before,
        {{ running_sum_before('running_weighted', 'weighted_event') }} as running_weighted_before
    from running
),

windowed as (
    select
        symbol,
        ts,
        in_output,
        ofi_event,
        {%- for name, seconds in windows.items() %}
        {{ time_window_sum('running_ofi', seconds) }} as ofi_{{ name }},
        {{ time_window_sum('running_depth', seconds) }} as depth_{{ name }},
        {{ time_window_sum('running_events', seconds, exact=true) }} as events_{{ name }},
        {{ time_window_sum('running_weighted', seconds) }} as ofi_weighted_{{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from running_before
),
{%- endif %}

final as (
    select
        symbol,
        ts,
        ofi_event,
        {%- for name in windows %}
        ofi_{{ name }},
        {%- endfor %}
        {%- for name in windows %}
        {{ safe_divide('ofi_' ~ name, safe_divide('depth_' ~ name, 'events_' ~ name)) }}
            as ofi_normalized_{{ name }},
        {%- endfor %}
        {%- for name in windows %}
        ofi_weighted_{{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from windowed
    where in_output
)

select * from final
