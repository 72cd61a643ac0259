{#- K9 lagged bqx_N and its changes over L bars; lagged_features.yml defines every column (135 warm-up bars = max N 75 + max L 60). -#}
{{ bar_family_model(warmup_bars=135) }}
