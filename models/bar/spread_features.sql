{#- K10 bar spread: in bps, over the range, moving mean/std/z-score, over the window's ranges and moves; spread_features.yml defines every column (1440 warm-up bars = the longest window, 1440, whose move ratio also reads the close before it) -#}
{{ bar_family_model(warmup_bars=1440) }}
