{#- Every symbol's latest bar feature vector (macros/serving/latest_vector.sql); its post-hook
    defines features.latest_bars(p_symbol) for one symbol. -#}
{{ config(materialized='view', post_hook="{{ define_latest_function('bars') }}") }}
{{ latest_vector_view('bars', [source('market', 'bars_1m'), ref('bars_1m_l2')]) }}
