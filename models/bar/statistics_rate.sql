{#- K2 rolling mean, std_s, z-score, skew and kurt of the rate index over 15..75 bars; statistics_rate.yml defines every column (74 warm-up bars: the longest window, 75 bars, ends at the first bar written). -#}
{{ bar_family_model(warmup_bars=74) }}
