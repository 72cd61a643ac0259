{#-
    The final one-minute bars the bar families read (FEATURE_DEFINITIONS K0, K-bars): the loaded
    bars of market.bars_1m, and the bars derived from snapshots (bars_1m_l2) for the minutes
    without a loaded bar (a loaded bar wins) that are final: the symbol has a snapshot at or
    after the minute's end. `origin` says which.
-#}
{{ final_minute_bars() }}
