-- The one-minute bars' spread and tick count (FEATURE_DEFINITIONS section K: the spread and
-- tick families read them). Nullable: a vendor file without them loads them as NULL.
-- spread: the bar's average quoted spread, in price units (ask - bid), not in pips or ticks.
-- ticks: the number of price updates in the minute.
alter table market.bars_1m
    add column spread double precision,
    add column ticks integer;

comment on column market.bars_1m.spread is
    'Average quoted spread (ask - bid) over the minute, in price units; NULL when the file had none.';
comment on column market.bars_1m.ticks is
    'Price updates in the minute; NULL when the file had none.';
