{#- K14 the panel of every symbol at each minute: ranks, percentiles and z-scores of returns, BQX, volatility and volume, panel means and dispersions, currency strength; cross_sectional.yml defines every column (240 warm-up bars per symbol: rvol_240's returns). -#}
{{ bar_panel_model(warmup_bars=240) }}
