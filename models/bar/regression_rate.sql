{#- K4 rolling quadratic regression of the rate index, 16 metrics x 5 windows; regression_rate.yml defines every column (149 warm-up bars, as regression_bqx). -#}
{{ bar_family_model(warmup_bars=149) }}
