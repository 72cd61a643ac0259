{#- K1 Bollinger %B and band width of bqx_N over N bars; bollinger_bqx.yml defines every column (149 warm-up bars: bqx_75 of the window's first bar, 74 bars back, needs the close 75 bars before it). -#}
{{ bar_family_model(warmup_bars=149) }}
