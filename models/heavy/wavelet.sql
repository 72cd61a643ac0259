{#- Energy of the db4 wavelet decomposition (G4) of each trailing window's 1-second log returns,
    by level; wavelet.yml defines every column. The level is fixed at 4 (the columns depend on
    it), which needs at least 7 x 2^4 = 112 returns: heavy_window >= 113. -#}
{{ config(pre_hook="{{ refresh_begin('l2', after='mid_bars_1s') }}", post_hook="{{ refresh_end() }}") }}
{%- set level = 4 -%}
with

windows as (
    {{ heavy_windows(ref('mid_bars_1s')) }}
),

energies as (
    select
        windows.symbol,
        windows.ts,
        parts.idx,
        (select sum(c * c) from unnest(parts.coeffs) as c) as energy
    from windows
    cross join lateral udf.wavedec({{ window_log_returns('windows.closes', 10000) }}, 'db4', {{ level }}) as parts
),

totals as (
    select
        symbol,
        ts,
        sum(energy) as total,
        sum(energy) filter (where idx > 0) as detail,
        {%- for idx in range(level + 1) %}
        sum(energy) filter (where idx = {{ idx }}) as energy_{{ idx }}{{ ',' if not loop.last }}
        {%- endfor %}
    from energies
    group by symbol, ts
),

final as (
    select
        symbol,
        ts,
        energy_0 / nullif(total, 0) as wavelet_energy_a{{ level }},
        {%- for idx in range(1, level + 1) %}
        energy_{{ idx }} / nullif(total, 0) as wavelet_energy_d{{ level + 1 - idx }},
        {%- endfor %}
        detail / nullif(energy_0, 0) as wavelet_detail_approx_ratio
    from totals
)

select * from final
