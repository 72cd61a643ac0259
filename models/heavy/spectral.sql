{#- FFT features (G6) of each trailing window's 1-second log returns; spectral.yml defines every
    column and tf_spectral.spectral_features computes them. -#}
{{ config(pre_hook="{{ refresh_begin('l2', after='mid_bars_1s') }}", post_hook="{{ refresh_end() }}") }}
{%- set keys = ['dominant_freq', 'dominant_period', 'band_low_share', 'band_mid_share', 'band_high_share', 'spectral_entropy'] -%}
with

{{ heavy_window_features('udf.spectral_features(' ~ window_log_returns('closes', 10000) ~ ')') }},

final as (
    select
        symbol,
        ts,
        {%- for key in keys %}
        (features ->> '{{ key }}')::double precision as spectral_{{ key | replace('spectral_', '') }}{{ ',' if not loop.last }}
        {%- endfor %}
    from computed
)

select * from final
