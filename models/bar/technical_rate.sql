{#- K3 TA-Lib RSI, MACD, STOCH, ADX/DI, CCI, WILLR, ATR, EMA distance and MFI of the rate index; technical_rate.yml defines every column (2600 warm-up bars: RSI(75)'s Wilder recursion, the slowest, forgets its seed to below 1e-13 in 75 + 2231 bars). -#}
{{ bar_family_model(warmup_bars=2600) }}
