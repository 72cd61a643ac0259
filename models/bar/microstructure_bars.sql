{#- K8 Amihud, Kyle's lambda, tick imbalance, VPIN and implied spreads on raw bars; microstructure_bars.yml defines every column (1440 warm-up bars: 1440 returns and sigma's 1440 price changes need the close before the window; VPIN's buckets and the tick rule continue from the stored row's state_* columns). -#}
{{ bar_family_model(warmup_bars=1440, seed_params=['vpin_bucket_volume']) }}
