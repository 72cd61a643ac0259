{#- K14 Johansen error-correction of the symbol against each of the first two reference symbols, refitted at each :59 bar on the trailing bar_heavy_window common minutes; error_correction.yml defines every column (warm-up: that many minutes at which both have a bar). -#}
{{ bar_family_model(
    warmup_bars=var('bar_heavy_window', 1440),
    peers=['ref1', 'ref2'],
    refit=true,
    common_warmup_slots=['ref1', 'ref2'],
) }}
