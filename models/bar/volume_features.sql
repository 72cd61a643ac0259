{#- K10 bar volume: ratios to moving averages, z-scores, windowed OBV and its slope, up-volume share, VWAP; volume_features.yml defines every column (1440 warm-up bars = the longest window, 1440, whose OBV also reads the close before it) -#}
{{ bar_family_model(warmup_bars=1440) }}
