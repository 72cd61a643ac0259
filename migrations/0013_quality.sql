-- Data quality of the raw L2 snapshots and of the files they came from, readable by any SQL
-- client. Functions take the parameters (time range, gap threshold, symbol); each view is its
-- function with the defaults: the whole history and a 5-second gap threshold.
--
-- Definitions (README, "Data quality"):
--   missing level   a (side, level) slot whose price or size is NULL
--   crossed         bid_price_1 > ask_price_1 (both present)
--   locked          bid_price_1 = ask_price_1 (both present); crossed and locked are disjoint,
--                   so the features' is_crossed (b_1 >= a_1) is crossed or locked
--   gap             the previous snapshot of the same symbol is more than the threshold
--                   earlier (strictly); a symbol's first snapshot has none before it
--   shares          counts divided by all snapshots in scope, one-sided books included
--   a file's snapshots   those of a symbol the file loaded (ops.ingest_ranges), with
--                   min_ts <= ts <= max_ts; where two files' ranges overlap, a snapshot counts
--                   for both, so a file can show more snapshots than it loaded
--
-- Time ranges are inclusive at both ends and apply to the snapshot's ts (for a gap, its end).
create schema if not exists quality;

-- One snapshot's checks and score; the row type of the score functions and views.
create type quality.scored_snapshot as (
    symbol text,
    ts timestamptz,
    score double precision,
    crossed boolean,
    locked boolean,
    missing_levels integer,
    missing_level_share double precision,
    level1_incomplete boolean,
    gap_before boolean,
    prev_ts timestamptz,
    seconds_since_prev double precision,
    bid_levels_missing integer[],
    ask_levels_missing integer[]
);

-- The per-snapshot checks and score of one symbol over [t_from, t_to]: one index range
-- scan, the previous snapshot's ts from lag(), and for the first row one probe before the
-- range. Not STRICT and STABLE, so that Postgres inlines it into the calling query.
create function quality.symbol_snapshot_scores(
    p_symbol text,
    t_from timestamptz,
    t_to timestamptz,
    gap_threshold interval default interval '5 seconds'
)
returns setof quality.scored_snapshot
language sql stable parallel safe
as $$
    with

    in_range as (
        select
            s.*,
            coalesce(
                lag(s.ts) over (order by s.ts),
                (
                    select max(before_range.ts) from market.l2_snapshots as before_range
                    where before_range.symbol = p_symbol and before_range.ts < t_from
                )
            ) as prev_ts
        from market.l2_snapshots as s
        where s.symbol = p_symbol and s.ts between t_from and t_to
    ),

    checked as (
        select
            in_range.symbol,
            in_range.ts,
            coalesce(in_range.bid_price_1 > in_range.ask_price_1, false) as crossed,
            coalesce(in_range.bid_price_1 = in_range.ask_price_1, false) as locked,
            -- level 1 cannot give both a mid and an imbalance
            (
                in_range.bid_price_1 is null or in_range.ask_price_1 is null
                or in_range.bid_size_1 is null or in_range.ask_size_1 is null
                or in_range.bid_size_1 = 0 or in_range.ask_size_1 = 0
            ) as level1_incomplete,
            coalesce(in_range.ts - in_range.prev_ts > gap_threshold, false) as gap_before,
            in_range.prev_ts,
            extract(epoch from in_range.ts - in_range.prev_ts)::double precision
                as seconds_since_prev,
            -- price + size is NULL exactly when the price or the size is: the level is missing
            num_nulls(
                in_range.bid_price_1 + in_range.bid_size_1,
                in_range.bid_price_2 + in_range.bid_size_2,
                in_range.bid_price_3 + in_range.bid_size_3,
                in_range.bid_price_4 + in_range.bid_size_4,
                in_range.bid_price_5 + in_range.bid_size_5,
                in_range.bid_price_6 + in_range.bid_size_6,
                in_range.bid_price_7 + in_range.bid_size_7,
                in_range.bid_price_8 + in_range.bid_size_8,
                in_range.bid_price_9 + in_range.bid_size_9,
                in_range.bid_price_10 + in_range.bid_size_10,
                in_range.ask_price_1 + in_range.ask_size_1,
                in_range.ask_price_2 + in_range.ask_size_2,
                in_range.ask_price_3 + in_range.ask_size_3,
                in_range.ask_price_4 + in_range.ask_size_4,
                in_range.ask_price_5 + in_range.ask_size_5,
                in_range.ask_price_6 + in_range.ask_size_6,
                in_range.ask_price_7 + in_range.ask_size_7,
                in_range.ask_price_8 + in_range.ask_size_8,
                in_range.ask_price_9 + in_range.ask_size_9,
                in_range.ask_price_10 + in_range.ask_size_10
            ) as missing_levels,
            array_positions(array[
                in_range.bid_price_1 + in_range.bid_size_1,
                in_range.bid_price_2 + in_range.bid_size_2,
                in_range.bid_price_3 + in_range.bid_size_3,
                in_range.bid_price_4 + in_range.bid_size_4,
                in_range.bid_price_5 + in_range.bid_size_5,
                in_range.bid_price_6 + in_range.bid_size_6,
                in_range.bid_price_7 + in_range.bid_size_7,
                in_range.bid_price_8 + in_range.bid_size_8,
                in_range.bid_price_9 + in_range.bid_size_9,
                in_range.bid_price_10 + in_range.bid_size_10
            ], null) as bid_levels_missing,
            array_positions(array[
                in_range.ask_price_1 + in_range.ask_size_1,
                in_range.ask_price_2 + in_range.ask_size_2,
                in_range.ask_price_3 + in_range.ask_size_3,
                in_range.ask_price_4 + in_range.ask_size_4,
                in_range.ask_price_5 + in_range.ask_size_5,
                in_range.ask_price_6 + in_range.ask_size_6,
                in_range.ask_price_7 + in_range.ask_size_7,
                in_range.ask_price_8 + in_range.ask_size_8,
                in_range.ask_price_9 + in_range.ask_size_9,
                in_range.ask_price_10 + in_range.ask_size_10
            ], null) as ask_levels_missing
        from in_range
    ),

    final as (
        select
            checked.symbol,
            checked.ts,
            -- score = 1 - 0.4 crossed - 0.2 locked - 0.2 missing_level_share
            --           - 0.3 level1_incomplete - 0.1 gap_before,
            -- counted in whole points of 1/100 so that it is exact; crossed and locked exclude
            -- each other, so the penalties add up to at most 1 and the score lies in [0, 1]
            (
                100
                - 40 * checked.crossed::int
                - 20 * checked.locked::int
                - checked.missing_levels
                - 30 * checked.level1_incomplete::int
                - 10 * checked.gap_before::int
            ) / 100.0::double precision as score,
            checked.crossed,
            checked.locked,
            checked.missing_levels,
            checked.missing_levels / 20.0::double precision as missing_level_share,
            checked.level1_incomplete,
            checked.gap_before,
            checked.prev_ts,
            checked.seconds_since_prev,
            checked.bid_levels_missing,
            checked.ask_levels_missing
        from checked
    )

    select * from final
$$;

-- Every symbol, or one: symbols by a loose index scan (one probe per symbol), then the
-- per-symbol function, so each symbol is one index range scan.
create function quality.snapshot_scores(
    gap_threshold interval default interval '5 seconds',
    t_from timestamptz default '-infinity',
    t_to timestamptz default 'infinity',
    p_symbol text default null
)
returns setof quality.scored_snapshot
language sql stable parallel safe
as $$
    with recursive symbols as (
        (
            select first_row.symbol from market.l2_snapshots as first_row
            order by first_row.symbol limit 1
        )
        union all
        select (
            select next_row.symbol from market.l2_snapshots as next_row
            where next_row.symbol > symbols.symbol
            order by next_row.symbol limit 1
        )
        from symbols
        where symbols.symbol is not null
    )

    select scored.*
    from symbols
    cross join lateral quality.symbol_snapshot_scores(
        symbols.symbol, t_from, t_to, gap_threshold
    ) as scored
    where symbols.symbol is not null and (p_symbol is null or symbols.symbol = p_symbol)
$$;

-- Gaps between consecutive snapshots of a symbol: the snapshots whose gap_before is true.
create function quality.gaps(
    threshold interval default interval '5 seconds',
    t_from timestamptz default '-infinity',
    t_to timestamptz default 'infinity',
    p_symbol text default null
)
returns table (
    symbol text,
    gap_start timestamptz,
    gap_end timestamptz,
    gap_seconds double precision
)
language sql stable parallel safe
as $$
    select scored.symbol, scored.prev_ts, scored.ts, scored.seconds_since_prev
    from quality.snapshot_scores(threshold, t_from, t_to, p_symbol) as scored
    where scored.gap_before
$$;

-- Per symbol: counts, shares of crossed and locked books, gaps and the score.
create function quality.symbol_quality(
    gap_threshold interval default interval '5 seconds',
    t_from timestamptz default '-infinity',
    t_to timestamptz default 'infinity',
    p_symbol text default null
)
returns table (
    symbol text,
    snapshots bigint,
    first_ts timestamptz,
    last_ts timestamptz,
    crossed bigint,
    locked bigint,
    crossed_share double precision,
    locked_share double precision,
    level1_incomplete_share double precision,
    missing_level_share double precision,
    gaps bigint,
    max_gap_seconds double precision,
    mean_score double precision,
    min_score double precision
)
language sql stable parallel safe
as $$
    select
        scored.symbol,
        count(*) as snapshots,
        min(scored.ts) as first_ts,
        max(scored.ts) as last_ts,
        count(*) filter (where scored.crossed) as crossed,
        count(*) filter (where scored.locked) as locked,
        avg(scored.crossed::int)::double precision as crossed_share,
        avg(scored.locked::int)::double precision as locked_share,
        avg(scored.level1_incomplete::int)::double precision as level1_incomplete_share,
        avg(scored.missing_level_share) as missing_level_share,
        count(*) filter (where scored.gap_before) as gaps,
        max(scored.seconds_since_prev) filter (where scored.gap_before) as max_gap_seconds,
        avg(scored.score) as mean_score,
        min(scored.score) as min_score
    from quality.snapshot_scores(gap_threshold, t_from, t_to, p_symbol) as scored
    group by scored.symbol
$$;

-- Null rate per (side, level): one row per symbol, side and level 1..10. The snapshots are
-- first counted per pattern of missing levels (few distinct ones), then the patterns are
-- unnested, so no snapshot is expanded into 20 rows.
create function quality.symbol_level_nulls(
    t_from timestamptz default '-infinity',
    t_to timestamptz default 'infinity',
    p_symbol text default null
)
returns table (
    symbol text,
    side text,
    level integer,
    snapshots bigint,
    null_snapshots bigint,
    null_rate double precision
)
language sql stable parallel safe
as $$
    with

    patterns as (
        select
            scored.symbol,
            scored.bid_levels_missing,
            scored.ask_levels_missing,
            count(*) as snapshots
        from quality.snapshot_scores(t_from => t_from, t_to => t_to, p_symbol => p_symbol)
            as scored
        group by scored.symbol, scored.bid_levels_missing, scored.ask_levels_missing
    ),

    totals as (
        select patterns.symbol, sum(patterns.snapshots)::bigint as snapshots
        from patterns
        group by patterns.symbol
    ),

    missing as (
        select patterns.symbol, slot.side, slot.level, sum(patterns.snapshots)::bigint as snapshots
        from patterns
        cross join lateral (
            select 'bid' as side, bid.level from unnest(patterns.bid_levels_missing) as bid (level)
            union all
            select 'ask' as side, ask.level from unnest(patterns.ask_levels_missing) as ask (level)
        ) as slot
        group by patterns.symbol, slot.side, slot.level
    )

    select
        totals.symbol,
        sides.side,
        levels.level,
        totals.snapshots,
        coalesce(missing.snapshots, 0) as null_snapshots,
        coalesce(missing.snapshots, 0)::double precision / totals.snapshots as null_rate
    from totals
    cross join (values ('bid'), ('ask')) as sides (side)
    cross join generate_series(1, 10) as levels (level)
    left join missing
        on totals.symbol = missing.symbol
        and sides.side = missing.side
        and levels.level = missing.level
$$;

-- The snapshots each L2 file loaded, scored: one index range scan per (file, symbol) range,
-- clipped to [t_from, t_to]. Files without a range (failed, bars, all rows rejected) have none.
create function quality.file_snapshot_scores(
    gap_threshold interval default interval '5 seconds',
    t_from timestamptz default '-infinity',
    t_to timestamptz default 'infinity',
    p_symbol text default null
)
returns table (
    file_id bigint,
    symbol text,
    ts timestamptz,
    score double precision,
    crossed boolean,
    locked boolean,
    missing_levels integer,
    missing_level_share double precision,
    level1_incomplete boolean,
    gap_before boolean,
    prev_ts timestamptz,
    seconds_since_prev double precision,
    bid_levels_missing integer[],
    ask_levels_missing integer[]
)
language sql stable parallel safe
as $$
    select ranges.file_id, scored.*
    from ops.ingest_files as files
    inner join ops.ingest_ranges as ranges on files.file_id = ranges.file_id
    cross join lateral quality.symbol_snapshot_scores(
        ranges.symbol,
        greatest(ranges.min_ts, t_from),
        least(ranges.max_ts, t_to),
        gap_threshold
    ) as scored
    where files.kind = 'l2' and (p_symbol is null or ranges.symbol = p_symbol)
$$;

-- Per file: the ledger's counts and rates, and the quality of the snapshots it loaded. Every
-- file of the ledger has a row; the snapshot columns are 0 or NULL where it has no snapshot
-- in scope.
create function quality.file_quality(
    gap_threshold interval default interval '5 seconds',
    t_from timestamptz default '-infinity',
    t_to timestamptz default 'infinity',
    p_symbol text default null
)
returns table (
    file_id bigint,
    file_name text,
    kind text,
    status text,
    rows_in bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    rows_duplicate bigint,
    duplicate_rate double precision,
    quarantine_rate double precision,
    symbols text[],
    snapshots bigint,
    crossed bigint,
    locked bigint,
    crossed_share double precision,
    locked_share double precision,
    level1_incomplete_share double precision,
    missing_level_share double precision,
    gaps bigint,
    max_gap_seconds double precision,
    mean_score double precision,
    min_score double precision
)
language sql stable parallel safe
as $$
    with

    per_file as (
        select
            scored.file_id,
            array_agg(distinct scored.symbol order by scored.symbol) as symbols,
            count(*) as snapshots,
            count(*) filter (where scored.crossed) as crossed,
            count(*) filter (where scored.locked) as locked,
            avg(scored.crossed::int)::double precision as crossed_share,
            avg(scored.locked::int)::double precision as locked_share,
            avg(scored.level1_incomplete::int)::double precision as level1_incomplete_share,
            avg(scored.missing_level_share) as missing_level_share,
            count(*) filter (where scored.gap_before) as gaps,
            max(scored.seconds_since_prev) filter (where scored.gap_before) as max_gap_seconds,
            avg(scored.score) as mean_score,
            min(scored.score) as min_score
        from quality.file_snapshot_scores(gap_threshold, t_from, t_to, p_symbol) as scored
        group by scored.file_id
    )

    select
        files.file_id,
        files.file_name,
        files.kind,
        files.status,
        files.rows_in,
        files.rows_loaded,
        files.rows_quarantined,
        files.rows_duplicate,
        files.rows_duplicate::double precision / nullif(files.rows_in, 0) as duplicate_rate,
        files.rows_quarantined::double precision / nullif(files.rows_in, 0) as quarantine_rate,
        coalesce(per_file.symbols, '{}') as symbols,
        coalesce(per_file.snapshots, 0) as snapshots,
        coalesce(per_file.crossed, 0) as crossed,
        coalesce(per_file.locked, 0) as locked,
        per_file.crossed_share,
        per_file.locked_share,
        per_file.level1_incomplete_share,
        per_file.missing_level_share,
        coalesce(per_file.gaps, 0) as gaps,
        per_file.max_gap_seconds,
        per_file.mean_score,
        per_file.min_score
    from ops.ingest_files as files
    left join per_file on files.file_id = per_file.file_id
$$;

-- Null rate per (side, level) of each L2 file's snapshots, as quality.symbol_level_nulls.
create function quality.file_level_nulls(
    t_from timestamptz default '-infinity',
    t_to timestamptz default 'infinity',
    p_symbol text default null
)
returns table (
    file_id bigint,
    file_name text,
    side text,
    level integer,
    snapshots bigint,
    null_snapshots bigint,
    null_rate double precision
)
language sql stable parallel safe
as $$
    with

    patterns as (
        select
            scored.file_id,
            scored.bid_levels_missing,
            scored.ask_levels_missing,
            count(*) as snapshots
        from quality.file_snapshot_scores(t_from => t_from, t_to => t_to, p_symbol => p_symbol)
            as scored
        group by scored.file_id, scored.bid_levels_missing, scored.ask_levels_missing
    ),

    totals as (
        select patterns.file_id, sum(patterns.snapshots)::bigint as snapshots
        from patterns
        group by patterns.file_id
    ),

    missing as (
        select patterns.file_id, slot.side, slot.level, sum(patterns.snapshots)::bigint as snapshots
        from patterns
        cross join lateral (
            select 'bid' as side, bid.level from unnest(patterns.bid_levels_missing) as bid (level)
            union all
            select 'ask' as side, ask.level from unnest(patterns.ask_levels_missing) as ask (level)
        ) as slot
        group by patterns.file_id, slot.side, slot.level
    )

    select
        totals.file_id,
        files.file_name,
        sides.side,
        levels.level,
        totals.snapshots,
        coalesce(missing.snapshots, 0) as null_snapshots,
        coalesce(missing.snapshots, 0)::double precision / totals.snapshots as null_rate
    from totals
    inner join ops.ingest_files as files on totals.file_id = files.file_id
    cross join (values ('bid'), ('ask')) as sides (side)
    cross join generate_series(1, 10) as levels (level)
    left join missing
        on totals.file_id = missing.file_id
        and sides.side = missing.side
        and levels.level = missing.level
$$;

-- The views: each function above with its defaults (whole history, 5-second gaps) --------

create view quality.snapshot_score as
select * from quality.snapshot_scores();

create view quality.snapshot_gaps as
select * from quality.gaps();

create view quality.symbol_summary as
select * from quality.symbol_quality();

create view quality.level_null_rates as
select * from quality.symbol_level_nulls();

create view quality.file_summary as
select * from quality.file_quality();

create view quality.file_level_null_rates as
select * from quality.file_level_nulls();

-- Identical duplicates are not quarantined (the ledger counts them in rows_duplicate);
-- conflicting duplicates are, with their own reason.
create view quality.file_quarantine_reasons as
select
    files.file_id,
    files.file_name,
    quarantined.reason,
    count(*) as rows
from ops.quarantine as quarantined
inner join ops.ingest_files as files on quarantined.file_id = files.file_id
group by files.file_id, files.file_name, quarantined.reason;

comment on schema quality is
    'Data quality of market.l2_snapshots and of the loaded files (README, "Data quality").';
comment on type quality.scored_snapshot is
    'One snapshot''s quality checks and score; see quality.snapshot_score.';
comment on function quality.symbol_snapshot_scores is
    'quality.snapshot_score for one symbol over [t_from, t_to]; gap_threshold sets gap_before.';
comment on function quality.snapshot_scores is
    'quality.snapshot_score over [t_from, t_to] (inclusive), for one symbol or all '
    '(p_symbol null).';
comment on function quality.gaps is
    'Gaps longer than threshold between consecutive snapshots of a symbol, whose end lies in '
    '[t_from, t_to].';
comment on function quality.symbol_quality is
    'quality.symbol_summary over [t_from, t_to] with the given gap threshold.';
comment on function quality.symbol_level_nulls is
    'quality.level_null_rates over [t_from, t_to].';
comment on function quality.file_snapshot_scores is
    'Each L2 file''s snapshots (symbol in ops.ingest_ranges, min_ts <= ts <= max_ts) with '
    'their quality.snapshot_score columns, clipped to [t_from, t_to].';
comment on function quality.file_quality is
    'quality.file_summary with snapshot columns over [t_from, t_to] and one symbol or all.';
comment on function quality.file_level_nulls is
    'quality.file_level_null_rates over [t_from, t_to].';

comment on view quality.snapshot_score is
    'One row per snapshot. score = 1 - 0.4*crossed - 0.2*locked - 0.2*missing_level_share '
    '- 0.3*level1_incomplete - 0.1*gap_before, in [0, 1] and a multiple of 0.01. crossed: '
    'bid_price_1 > ask_price_1; locked: bid_price_1 = ask_price_1 (false when either is NULL); '
    'missing_level_share: missing_levels / 20, a level missing when its price or size is NULL '
    '(listed in bid_levels_missing, ask_levels_missing); level1_incomplete: a level-1 price or '
    'size is NULL or a level-1 size is 0; gap_before: ts - prev_ts > 5 s, prev_ts being the '
    'symbol''s previous snapshot (false on its first).';
comment on view quality.snapshot_gaps is
    'Gaps of more than 5 s between consecutive snapshots of a symbol: gap_start is the '
    'snapshot before, gap_end the one after, gap_seconds = gap_end - gap_start. '
    'quality.gaps(threshold) for another threshold.';
comment on view quality.symbol_summary is
    'One row per symbol: snapshots, crossed and locked counts, shares of all its snapshots '
    'that are crossed, locked and level1_incomplete, mean missing_level_share, gaps of more '
    'than 5 s and the longest, mean and min score (see quality.snapshot_score).';
comment on view quality.level_null_rates is
    'One row per symbol, side (bid, ask) and level 1..10: null_rate = share of the symbol''s '
    'snapshots whose price or size at that level is NULL.';
comment on view quality.file_summary is
    'One row per ingested file: the ledger''s counts, duplicate_rate = rows_duplicate / rows_in '
    'and quarantine_rate = rows_quarantined / rows_in, and for L2 files the quality of its '
    'snapshots (a symbol it loaded, min_ts <= ts <= max_ts in ops.ingest_ranges; a snapshot '
    'in two files'' overlapping ranges counts for both), defined as in quality.symbol_summary.';
comment on view quality.file_level_null_rates is
    'One row per L2 file with snapshots, side and level 1..10: null_rate = share of the '
    'file''s snapshots whose price or size at that level is NULL.';
comment on view quality.file_quarantine_reasons is
    'Rows quarantined per file and reason (ops.quarantine); identical duplicates are counted '
    'in ops.ingest_files.rows_duplicate instead.';
