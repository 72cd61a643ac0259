{#- K14 FFT, db4 wavelet and SSA spectra of the trailing 256 and 1024 returns, refitted at each :59 bar; spectral_bars.yml defines every column (1024 warm-up bars). -#}
{{ bar_family_model(warmup_bars=1024, refit=true) }}
