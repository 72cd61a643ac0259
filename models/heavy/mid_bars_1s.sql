{#-
    1-second mid-price bars, the input of every heavy-math family. A bar covers [s, s + 1 s)
    and is stamped at its end, ts = s + 1 s, so that a value computed from bars up to ts uses
    only snapshots before ts. close is the mid of the bar's last snapshot with a mid; a second
    without one has no bar (gaps are not filled).

    Incremental: l2_snapshots_scoped's lookahead of 1 s 1 µs moves the start back to the
    newest bar's own second, which is rebuilt whole (it may have been cut short by the end of
    the previous load); a bar is written only when every snapshot read for its second is in
    the refresh scope.
-#}
-- depends_on: {{ ref('stg_l2_snapshots') }}
{{ config(pre_hook="{{ refresh_begin('l2') }}", post_hook="{{ refresh_end() }}") }}
with

snapshots as (
    {{ l2_snapshots_scoped(lookahead='1 second 1 microsecond') }}
),

bars as (
    select
        symbol,
        time_bucket('1 second', ts) + interval '1 second' as ts,
        last({{ book_mid() }}, ts) filter (where {{ book_mid() }} is not null) as close,  -- noqa: RF04
        count(*) as snapshots,
        bool_and(in_output) as in_output
    from snapshots
    group by symbol, time_bucket('1 second', ts)
),

final as (
    select
        symbol,
        ts,
        close,
        snapshots::int as snapshots
    from bars
    where in_output and close is not null
)

select * from final
