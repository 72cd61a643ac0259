{#-
    The final one-minute bars (stg_bars_1m's query, macros/bars/final_minute_bars.sql: loaded
    bars, and bars derived from snapshots once final where no bar was loaded) kept in a
    hypertable, without `origin`: the one-minute
    source of bars_30m and bars_60m where they are continuous aggregates (a continuous
    aggregate reads one hypertable, and neither the union nor the finality rule of
    stg_bars_1m can be written in one). FEATURE_DEFINITIONS K-bars.
    Incremental: per symbol with new writes of either kind, the minutes from the earlier of
    the latest stored minute and the minute before the earliest write (a new snapshot makes
    the previous minute final; a loaded bar replaces a derived one in place).
-#}
{{ config(
    pre_hook=[
        "{{ refresh_begin(['l2', 'bars'], after='bars_1m_l2') }}",
        "{{ drop_continuous_aggregates(['bars_30m', 'bars_60m']) }}",
    ],
    post_hook=[
        "{{ refresh_end(['l2', 'bars']) }}",
        "select create_hypertable('{{ this }}', by_range('ts', interval '7 days'), migrate_data => true, if_not_exists => true)",
    ],
) }}
{%- set minute_bars = '(' ~ final_minute_bars() ~ ')' %}
-- depends_on: {{ ref('bars_1m_l2') }}
{%- set bar_columns = ['symbol', 'ts', 'open', 'high', 'low', 'close', 'volume', 'spread', 'ticks'] %}
with

final_bars as (
    {%- if is_incremental() %}
    {{ bucket_scope("interval '1 minute'", back="interval '1 minute'") }}

    select
        {%- for column in bar_columns %}
        symbol_bars.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    {{ scoped_symbol_bars(minute_bars) }}
    {%- else %}
    select
        {%- for column in bar_columns %}
        minute_bar.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ minute_bars }} as minute_bar
    {%- endif %}
)

select * from final_bars
