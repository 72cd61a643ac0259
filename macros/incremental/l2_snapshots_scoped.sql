{#-
    The raw snapshots an L2 family model reads, with `in_output` marking the rows it writes.

    Full build: every snapshot, all in output.
    Incremental run: per symbol, output starts at `from_ts`, the earlier of
      - the first snapshot after the newest row already in the model, and
      - the earliest timestamp of any write the model has not processed (late rows, from
        whatever wrote them: refresh_begin),
    and reading starts `warmup_rows` rows before `from_ts`, or at the last row at or before
    `from_ts - warmup`, whichever is earlier, so that every window of an output row, and
    the previous-row values its first rows need, are the same as in a full build.
    `extra_read_from`, a SQL expression of `scope.symbol` and `scope.from_ts`, can move the
    start earlier still (e.g. to the 101st earlier non-zero event). A forward-looking model
    passes `lookahead` (an interval): rows up to that much before `from_ts` are rewritten
    too, since the new rows complete their horizons.
    Only the symbols with writes the model has not processed are read.
-#}
{% macro l2_snapshots_scoped(warmup_rows=0, warmup='0 seconds', extra_read_from=none, lookahead=none) -%}
    {%- if warmup_rows is not number or warmup_rows < 0 -%}
        {{ exceptions.raise_compiler_error("warmup_rows must be a non-negative integer, got '" ~ warmup_rows ~ "'") }}
    {%- endif -%}
    {%- set raw = source('market', 'l2_snapshots') -%}
    {%- if is_incremental() %}
    -- only the symbols something was written to since this model's last run: every write
    -- is logged (refresh_begin), so the others have nothing new
    with bounds as materialized (
        select
            pending.symbol,
            (
                select max(done.ts) from {{ this }} as done where done.symbol = pending.symbol
            ) as done_until,
            pending.min_ts as late_from
        from {{ _pending_relation(this) }} as pending
    ),

    scope as materialized (
        select
            bounds.symbol,
            case
                when bounds.done_until is null then '-infinity'::timestamptz
                else least(bounds.late_from, bounds.done_until + interval '1 microsecond')
                    {%- if lookahead %} - interval '{{ lookahead }}'{% endif %}
            end as from_ts
        from bounds
    ),

    warm_scope as materialized (
        select
            scope.symbol,
            scope.from_ts,
            least(
                -- the last row at or before the time window's start, so that a row-to-row
                -- change (lag) of the window's first row is computed as in a full build
                coalesce((
                    select before_window.ts from {{ raw }} as before_window
                    where
                        before_window.symbol = scope.symbol
                        and before_window.ts <= scope.from_ts - interval '{{ warmup }}'
                    order by before_window.ts desc
                    limit 1
                ), '-infinity'::timestamptz),
                {%- if warmup_rows > 0 %}
                coalesce((
                    select earlier.ts from {{ raw }} as earlier
                    where earlier.symbol = scope.symbol and earlier.ts < scope.from_ts
                    order by earlier.ts desc
                    limit 1 offset {{ warmup_rows - 1 }}
                ), '-infinity'::timestamptz)
                {%- else %}
                scope.from_ts
                {%- endif %}
                {%- if extra_read_from %},
                coalesce({{ extra_read_from }}, '-infinity'::timestamptz)
                {%- endif %}
            ) as read_from
        from scope
    )

    -- lateral: one index range scan per symbol (and only the chunks it touches), never a
    -- scan of the whole history
    select
        raw_rows.*,
        raw_rows.ts >= warm_scope.from_ts as in_output
    from warm_scope
    cross join lateral (
        select symbol_rows.*
        from {{ raw }} as symbol_rows
        where symbol_rows.symbol = warm_scope.symbol and symbol_rows.ts >= warm_scope.read_from
        offset 0  -- keeps the planner from flattening this into a join over all rows
    ) as raw_rows
    {%- else %}
    select
        raw_rows.*,
        true as in_output
    from {{ raw }} as raw_rows
    {%- endif %}
{%- endmacro %}
