{#- K6 Fibonacci retracement features of the 60/240/1440-bar swing on raw H, L, C; fibonacci.yml defines every column (1439 warm-up bars: the longest window, 1440 bars, ends at the first bar written). -#}
{{ bar_family_model(warmup_bars=1439) }}
