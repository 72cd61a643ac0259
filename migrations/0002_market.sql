-- Raw market data. One row per (symbol, ts); level 1 is the best quote.
create table market.l2_snapshots (
    symbol text not null,
    ts timestamptz not null,
    bid_price_1 double precision, bid_price_2 double precision,
    bid_price_3 double precision, bid_price_4 double precision,
    bid_price_5 double precision, bid_price_6 double precision,
    bid_price_7 double precision, bid_price_8 double precision,
    bid_price_9 double precision, bid_price_10 double precision,
    bid_size_1 double precision, bid_size_2 double precision,
    bid_size_3 double precision, bid_size_4 double precision,
    bid_size_5 double precision, bid_size_6 double precision,
    bid_size_7 double precision, bid_size_8 double precision,
    bid_size_9 double precision, bid_size_10 double precision,
    ask_price_1 double precision, ask_price_2 double precision,
    ask_price_3 double precision, ask_price_4 double precision,
    ask_price_5 double precision, ask_price_6 double precision,
    ask_price_7 double precision, ask_price_8 double precision,
    ask_price_9 double precision, ask_price_10 double precision,
    ask_size_1 double precision, ask_size_2 double precision,
    ask_size_3 double precision, ask_size_4 double precision,
    ask_size_5 double precision, ask_size_6 double precision,
    ask_size_7 double precision, ask_size_8 double precision,
    ask_size_9 double precision, ask_size_10 double precision,
    constraint l2_snapshots_pkey primary key (symbol, ts)
);
select create_hypertable('market.l2_snapshots', by_range('ts', interval '1 day'));
comment on table market.l2_snapshots is
    'Limit-order-book snapshots, 10 levels per side; loaded by `tickfeatures load l2`.';

-- M1 OHLCV bars; ts is the bar's open time.
create table market.bars_1m (
    symbol text not null,
    ts timestamptz not null,
    open double precision,
    high double precision,
    low double precision,
    close double precision,
    volume double precision,
    constraint bars_1m_pkey primary key (symbol, ts)
);
select create_hypertable('market.bars_1m', by_range('ts', interval '7 days'));
comment on table market.bars_1m is
    'One-minute OHLCV bars, ts = bar open; loaded by `tickfeatures load bars`.';
