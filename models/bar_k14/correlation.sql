{#- K14 Pearson correlations of returns and BQX within the symbol, with each reference symbol and across its currency groups; correlation.yml defines every column (the warm-up is the kernel's WARMUP_BARS: the longest window and the BQX it correlates). -#}
{{ bar_family_model(
    warmup_bars=1514,
    peers=['ref1', 'ref2', 'ref3', 'base_same', 'base_flip', 'quote_same', 'quote_flip'],
) }}
