{#- K1 Bollinger %B and band width of the rate index over 15..75 bars; bollinger_rate.yml defines every column (74 warm-up bars: the longest window, 75 bars, ends at the first bar written). -#}
{{ bar_family_model(warmup_bars=74) }}
