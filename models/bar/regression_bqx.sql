{#- K4 rolling quadratic regression of bqx_N over N values, 16 metrics x 5 windows; regression_bqx.yml defines every column (149 warm-up bars = bqx_75's 75 bars back + 74 more values). -#}
{{ bar_family_model(warmup_bars=149) }}
