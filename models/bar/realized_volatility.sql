{#- K7 realized volatility (close, Parkinson, Garman-Klass, Rogers-Satchell, Yang-Zhang) over 15..1440 bars; realized_volatility.yml defines every column (1440 warm-up bars: 1440 returns need the close before the window). -#}
{{ bar_family_model(warmup_bars=1440) }}
