{#- 60-minute bars of the final one-minute bars (FEATURE_DEFINITIONS K-bars): macros/bars/coarser_bars.sql. -#}
{{ config(
    pre_hook="{{ refresh_begin(['l2', 'bars'], after='bars_1m_l2') }}",
    post_hook="{{ refresh_end(['l2', 'bars']) }}",
    continuous_aggregate='bars_60m_continuous',
) }}
-- depends_on: {{ ref('bars_1m_final') }}
{{ coarser_bars(60) }}
