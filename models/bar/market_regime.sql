{#- K13 trend, Hurst, ADX, volatility and liquidity regimes on the raw close; market_regime.yml defines every column (1679 warm-up bars: the 240-bar volatility ranked over the trailing 1440 bars; ADX(14) restarted there has converged). -#}
{{ bar_family_model(warmup_bars=1679) }}
