{#- Every symbol's latest L2 feature vector (macros/serving/latest_vector.sql); its post-hook
    defines features.latest_l2(p_symbol) for one symbol. -#}
{{ config(materialized='view', post_hook="{{ define_latest_function('l2') }}") }}
{{ latest_vector_view('l2', [source('market', 'l2_snapshots')]) }}
