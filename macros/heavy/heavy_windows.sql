{#-
    The trailing windows a heavy-math family computes on: one row per symbol per stamp, where a
    stamp is a 1-second bar of `bars` ending on a multiple of `stride` seconds (since the
    epoch, so full builds and refreshes stamp the same bars), with
      closes        the closes of the stamp's bar and the `window` - 1 bars before it, oldest
                    first (only stamps with `window` bars behind them get a row);
      span_seconds  the seconds the window covers, from the first bar's start to the stamp.
    Window and stride default to the dbt vars heavy_window (256) and heavy_stride_seconds (10).

    Incremental run: per symbol, stamps from the earlier of the first stamp after the newest
    row already in the model and the earliest snapshot of any write this model has not
    processed (pre-hook refresh_begin(..., after='mid_bars_1s') lists only writes the bars
    already include), for the symbols with such writes only. An earlier stamp's window ends
    before that snapshot, so it is unchanged.
-#}
{% macro heavy_windows(bars, window=none, stride=none) -%}
    {%- set window = window or var('heavy_window') -%}
    {%- set stride = stride or var('heavy_stride_seconds') -%}
    {%- if window is not number or window < 16 -%}
        {{ exceptions.raise_compiler_error("heavy_window must be an integer of at least 16 bars, got '" ~ window ~ "'") }}
    {%- endif -%}
    {%- if stride is not number or stride < 1 -%}
        {{ exceptions.raise_compiler_error("heavy_stride_seconds must be a positive integer, got '" ~ stride ~ "'") }}
    {%- endif -%}
    {%- if is_incremental() %}
    -- the symbols with writes this model has not processed; the others have nothing new
    with scope as materialized (
        select
            pending.symbol,
            least(
                pending.min_ts,
                coalesce(
                    (select max(done.ts) from {{ this }} as done where done.symbol = pending.symbol)
                    + interval '1 microsecond',
                    '-infinity'::timestamptz
                )
            ) as from_ts
        from {{ _pending_relation(this) }} as pending
    ),
    {%- else %}
    with recursive symbols as (
        {{ distinct_symbols(bars) }}
    ),

    scope as materialized (
        select
            symbols.symbol,
            '-infinity'::timestamptz as from_ts
        from symbols
        where symbols.symbol is not null
    ),
    {%- endif %}

    stamps as (
        select
            scope.symbol,
            stamp.ts
        from scope
        cross join lateral (
            select bar.ts
            from {{ bars }} as bar
            where
                bar.symbol = scope.symbol
                and bar.ts >= scope.from_ts
                and extract(epoch from bar.ts)::bigint % {{ stride }} = 0
            offset 0
        ) as stamp
    )

    select
        stamps.symbol,
        stamps.ts,
        trail.closes,
        trail.span_seconds
    from stamps
    cross join lateral (
        select
            array_agg(recent.close order by recent.ts) as closes,
            count(*) as bars,
            extract(epoch from max(recent.ts) - min(recent.ts))::double precision + 1 as span_seconds
        from (
            select bar.ts, bar.close
            from {{ bars }} as bar
            where bar.symbol = stamps.symbol and bar.ts <= stamps.ts
            order by bar.ts desc
            limit {{ window }}
        ) as recent
    ) as trail
    where trail.bars = {{ window }}
{%- endmacro %}

{#- ln(closes[i] / closes[i-1]) times `scale` for i = 2..n: the window's bar returns, oldest first. -#}
{% macro window_log_returns(closes, scale=1) -%}
    array(
        select {{ scale }} * ln({{ closes }}[i] / {{ closes }}[i - 1])
        from generate_series(2, cardinality({{ closes }})) as i
        order by i
    )
{%- endmacro %}

{#-
    The first two CTEs of a family that computes all its columns in one kernel call per
    window: `windows` (heavy_windows of mid_bars_1s) and `computed` (symbol, ts, features),
    where features = `expression` of the window's closes and span_seconds. The call is
    evaluated once per window, however many columns read its result.
-#}
{% macro heavy_window_features(expression) -%}
windows as (
    {{ heavy_windows(ref('mid_bars_1s')) }}
),

computed as (
    select
        symbol,
        ts,
        {{ expression }} as features
    from windows
    {{ evaluate_once(ordered=true) }}
)
{%- endmacro %}
