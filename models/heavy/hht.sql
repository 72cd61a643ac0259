{#- Hilbert-Huang features (G1, G2) of each trailing window of 1-second mid bars; hht.yml
    defines every column and tf_families.hht_features computes them. -#}
{{ config(pre_hook="{{ refresh_begin('l2', after='mid_bars_1s') }}", post_hook="{{ refresh_end() }}") }}
{%- set columns = {
    'hht_trend_strength': 'trend_strength',
    'hht_trend_slope': 'trend_slope',
    'hht_cycle_phase': 'cycle_phase',
    'hht_dominant_freq': 'dominant_freq',
    'hht_inst_amplitude': 'inst_amplitude',
    'hht_energy_high_freq': 'energy_high_freq',
    'hht_energy_mid_freq': 'energy_mid_freq',
    'hht_energy_residual': 'energy_residual',
    'hht_data_quality': 'data_quality',
    'hht_calculation_time_ms': 'calculation_time_ms',
    'hht_trend_confidence': 'trend_confidence',
    'trend_persistence_hht': 'trend_persistence',
    'mean_reversion_hht': 'mean_reversion',
} -%}
with

{{ heavy_window_features('udf.hht_features(closes, span_seconds)') }},

final as (
    select
        symbol,
        ts,
        {%- for column, key in columns.items() %}
        (features ->> '{{ key }}')::double precision as {{ column }},
        {%- endfor %}
        (features ->> 'imf_count')::int as hht_imf_count,
        (features ->> 'regime_classifier')::int as hht_regime_classifier,
        (features ->> 'market_state')::int as hht_market_state
    from computed
)

select * from final
