{#- K5 ratios, differences and sign agreements of the K4 fits across window pairs and domains; parabolic_comparison.yml defines every column (149 warm-up bars, as regression_bqx). -#}
{{ bar_family_model(warmup_bars=149) }}
