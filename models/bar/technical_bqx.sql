{#- K3 TA-Lib RSI, MACD, CMO and EMA difference of bqx_N; technical_bqx.yml defines every column (1500 warm-up bars: bqx_75 starts 75 bars in, its EMA(75) is seeded 74 bars later and forgets the seed to below 1e-13 in 1123 bars). -#}
{{ bar_family_model(warmup_bars=1500) }}
