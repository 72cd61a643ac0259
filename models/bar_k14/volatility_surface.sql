{#- K14 realized volatility term structure (K7) and GARCH(1,1) refitted at each :59 bar on the trailing bar_heavy_window returns; volatility_surface.yml defines every column. -#}
{{ bar_family_model(warmup_bars=[var('bar_heavy_window', 1440), 1440] | max, refit=true) }}
