{#- K11 calendar, session and bar-spacing features of each bar's open time; time_features.yml defines every column (1 warm-up bar: the previous bar's time; bars_since_gap continues the stored row). -#}
{{ bar_family_model(warmup_bars=1) }}
