{#- Gaussian HMM regime (G3) of each trailing window of 1-second mid bars, refitted per window;
    hmm_regime.yml defines every column and tf_families.hmm_regime_features computes them. -#}
{{ config(pre_hook="{{ refresh_begin('l2', after='mid_bars_1s') }}", post_hook="{{ refresh_end() }}") }}
{%- set n_states = 3 -%}
with

{{ heavy_window_features('udf.hmm_regime_features(closes, ' ~ n_states ~ ', ' ~ var('hmm_n_iter') ~ ', 0)') }},

final as (
    select
        symbol,
        ts,
        (features ->> 'state')::int as hmm_state,
        {%- for k in range(n_states) %}
        (features -> 'probabilities' ->> {{ k }})::double precision as hmm_prob_state_{{ k }},
        {%- endfor %}
        (features ->> 'duration')::int as hmm_state_duration,
        {%- for k in range(n_states) %}
        (features -> 'means' ->> {{ k }})::double precision as hmm_mean_state_{{ k }},
        {%- endfor %}
        {%- for k in range(n_states) %}
        (features -> 'variances' ->> {{ k }})::double precision as hmm_variance_state_{{ k }},
        {%- endfor %}
        (features ->> 'loglik')::double precision as hmm_loglik
    from computed
)

select * from final
