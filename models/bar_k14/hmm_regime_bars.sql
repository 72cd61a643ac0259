{#- K14 3-state Gaussian HMM regimes of the one-minute returns, refitted at each :59 bar on the trailing bar_heavy_window returns; hmm_regime_bars.yml defines every column. -#}
{{ bar_family_model(warmup_bars=var('bar_heavy_window', 1440), refit=true) }}
