{#-
    The whole SQL of a bar-family model (FEATURE_DEFINITIONS section K): per symbol, the final
    one-minute bars of stg_bars_1m packed as one float64 matrix (udf.float8_pack_agg),
    the model's kernel (python_udfs/tf_bars.py, through udf.bar_rows) run on them, and its rows
    read back by udf.float8_rows. The columns are the model's YAML columns, in order, cast to
    their `data_type` (double precision unless boolean or integer).

    Full build: every symbol, every bar. Incremental run: per symbol with writes the model has
    not processed (refresh_begin), output starts at `from_ts`, the earlier of the first bar
    after the newest stored row and the earliest unprocessed write (late bars: a bar older
    than the symbol's first one recomputes the whole symbol, as C_first changes); the kernel
    also gets the `warmup_bars` bars before it, and `prev`, the stored row before `from_ts`,
    for values carried from the symbol's first bar.
    `scales` (multi_scale): {'m30': 'bars_30m', ...}: each coarser model's buckets from
    `scale_warmup_buckets` buckets before the one holding `from_ts` on, as extra inputs.
-#}
{% macro bar_family_model(warmup_bars, scales=none, scale_warmup_buckets=0) -%}
    {%- if warmup_bars is not number or warmup_bars < 0 -%}
        {{ exceptions.raise_compiler_error("bar_family_model: warmup_bars must be a non-negative integer, got '" ~ warmup_bars ~ "'") }}
    {%- endif -%}
    {%- set scales = scales or {} -%}
    {%- set bars = ref('stg_bars_1m') -%}
    {%- set columns = [] -%}
    {%- for column in documented_columns(model.name) if column.name not in ('symbol', 'ts') -%}
        {%- do columns.append(column) -%}
    {%- endfor %}
with
{%- if is_incremental() %}

bounds as materialized (
    select
        pending.symbol,
        (select max(done.ts) from {{ this }} as done where done.symbol = pending.symbol) as done_until,
        pending.min_ts as late_from
    from {{ _pending_relation(this) }} as pending
),

scope as materialized (
    select
        bounds.symbol,
        case
            when bounds.done_until is null then '-infinity'::timestamptz
            else least(bounds.late_from, bounds.done_until + interval '1 microsecond')
        end as from_ts
    from bounds
),
{%- else %}

symbols as (
    with recursive symbols as (
        {{ distinct_symbols(source('market', 'bars_1m')) }}
    ),

    derived_symbols as (
        {{ distinct_symbols(ref('bars_1m_l2')) }}
    )

    select symbols.symbol from symbols where symbols.symbol is not null
    union
    select derived_symbols.symbol from derived_symbols where derived_symbols.symbol is not null
),

scope as materialized (
    select
        symbols.symbol,
        '-infinity'::timestamptz as from_ts
    from symbols
),
{%- endif %}

warm_scope as materialized (
    select
        scope.symbol,
        scope.from_ts,
        {%- if warmup_bars > 0 %}
        -- the warmup_bars-th final bar before from_ts. A symbol without derived bars before
        -- from_ts (bars loaded only, the common case): one backward index scan of its loaded
        -- bars. Otherwise the newest warmup_bars of each kind (index scans backwards), merged
        -- (a minute with both is one bar), the last of them: the merge costs three times the
        -- scan (hash and sort), and through stg_bars_1m the union would sort all of the
        -- symbol's bars (11 ms a symbol).
        coalesce(case
            when not exists (
                select from {{ ref('bars_1m_l2') }} as derived
                where derived.symbol = scope.symbol and derived.ts < scope.from_ts
            ) then (
                select loaded.ts from {{ source('market', 'bars_1m') }} as loaded
                where loaded.symbol = scope.symbol and loaded.ts < scope.from_ts
                order by loaded.ts desc
                limit 1 offset {{ warmup_bars - 1 }}
            )
            else (
                select earlier.ts
                from (
                    (
                        select loaded.ts from {{ source('market', 'bars_1m') }} as loaded
                        where loaded.symbol = scope.symbol and loaded.ts < scope.from_ts
                        order by loaded.ts desc
                        limit {{ warmup_bars }}
                    )
                    union
                    (
                        -- final ones only (stg_bars_1m's rule: a snapshot at or after the
                        -- minute's end)
                        select derived.ts from {{ ref('bars_1m_l2') }} as derived
                        where
                            derived.symbol = scope.symbol
                            and derived.ts < scope.from_ts
                            and derived.ts + interval '1 minute' <= (
                                select max(snapshots.ts) from {{ source('market', 'l2_snapshots') }} as snapshots
                                where snapshots.symbol = scope.symbol
                            )
                        order by derived.ts desc
                        limit {{ warmup_bars }}
                    )
                ) as earlier
                order by earlier.ts desc
                limit 1 offset {{ warmup_bars - 1 }}
            )
        end, '-infinity'::timestamptz) as read_from,
        {%- else %}
        scope.from_ts as read_from,
        {%- endif %}
        -- the close of the symbol's first final bar: the earlier of its first loaded and first
        -- derived bar (index probes; a derived bar that is not final yet is not staged)
        (
            select first_bar.close from {{ bars }} as first_bar
            where
                first_bar.symbol = scope.symbol
                and first_bar.ts = least(
                    (
                        select min(loaded.ts) from {{ source('market', 'bars_1m') }} as loaded
                        where loaded.symbol = scope.symbol
                    ),
                    (
                        select min(derived.ts) from {{ ref('bars_1m_l2') }} as derived
                        where derived.symbol = scope.symbol
                    )
                )
        ) as first_close,
        {%- if is_incremental() %}
        (
            select to_jsonb(stored) - 'symbol' - 'ts' from {{ this }} as stored
            where stored.symbol = scope.symbol and stored.ts < scope.from_ts
            order by stored.ts desc
            limit 1
        ) as prev
        {%- else %}
        null::jsonb as prev
        {%- endif %}
    from scope
),

-- per symbol, its bars as one row-major float64 matrix (udf.float8_pack_agg: one sort of rows
-- that are already nearly in order; an array_agg per column costs five times as much)
packed as (
    select
        warm_scope.symbol,
        warm_scope.first_close,
        warm_scope.prev,
        symbol_bars.start,
        symbol_bars.bars
    from warm_scope
    cross join lateral (
        select
            count(*) filter (where minute_bar.ts < warm_scope.from_ts) as start,
            udf.float8_pack_agg(
                date_part('epoch', minute_bar.ts) / 60,
                minute_bar.open,
                minute_bar.high,
                minute_bar.low,
                minute_bar.close,
                minute_bar.volume,
                minute_bar.spread,
                minute_bar.ticks::double precision
                order by minute_bar.ts
            ) as bars
        from {{ bars }} as minute_bar
        where minute_bar.symbol = warm_scope.symbol and minute_bar.ts >= warm_scope.read_from
    ) as symbol_bars
    where symbol_bars.bars is not null  -- a symbol without bars in range has nothing to write
),
{%- for scale, relation in scales.items() %}

{{ scale }}_packed as (
    select
        warm_scope.symbol,
        scale_bars.bars
    from warm_scope
    cross join lateral (
        select
            udf.float8_pack_agg(
                date_part('epoch', scale_bar.ts) / 60,
                scale_bar.open,
                scale_bar.high,
                scale_bar.low,
                scale_bar.close,
                scale_bar.volume,
                scale_bar.spread,
                scale_bar.ticks::double precision,
                scale_bar.bars::double precision
                order by scale_bar.ts
            ) as bars
        from {{ ref(relation) }} as scale_bar
        where
            scale_bar.symbol = warm_scope.symbol
            and scale_bar.ts >= coalesce((
                select earlier.ts from {{ ref(relation) }} as earlier
                where earlier.symbol = warm_scope.symbol and earlier.ts <= warm_scope.from_ts
                order by earlier.ts desc
                limit 1 offset {{ scale_warmup_buckets }}
            ), '-infinity'::timestamptz)
    ) as scale_bars
),
{%- endfor %}

-- the kernel through udf._bar_rows (udf.bar_rows' body, inline: the SQL wrapper copies the
-- result, tens of megabytes a symbol, once more)
computed as (
    select
        packed.symbol,
        case
            when kernel.error is null then kernel.value
            else udf._fail('udf.bar_rows', kernel.error, kernel.value)
        end as matrix
    from packed
    {%- for scale in scales %}
    left join {{ scale }}_packed on packed.symbol = {{ scale }}_packed.symbol
    {%- endfor %}
    cross join lateral udf._bar_rows(
        '{{ model.name }}',
        array[{% for column in columns %}'{{ column.name }}'{{ ', ' if not loop.last }}{% endfor %}]::text[],
        array[packed.bars{% for scale in scales %}, {{ scale }}_packed.bars{% endfor %}],
        jsonb_build_object(
            'first_close', packed.first_close,
            'start', packed.start,
            'prev', packed.prev,
            'scales', jsonb_build_array({% for scale in scales %}'{{ scale }}'{{ ', ' if not loop.last }}{% endfor %})
        )
    ) as kernel
),

final as (
    select
        computed.symbol,
        to_timestamp(rows_out._minute * 60) as ts,
        {%- for column in columns %}
        {%- set data_type = (column.data_type or 'double precision') | lower %}
        {%- if data_type == 'boolean' %}
        rows_out.{{ column.name }} <> 0 as {{ column.name }}
        {%- elif data_type == 'integer' %}
        rows_out.{{ column.name }}::integer as {{ column.name }}
        {%- else %}
        rows_out.{{ column.name }}
        {%- endif %}{{ ',' if not loop.last }}
        {%- endfor %}
    from computed
    cross join lateral udf.float8_rows(computed.matrix, {{ columns | length + 1 }}) as rows_out (
        _minute double precision,
        {%- for column in columns %}
        {{ column.name }} double precision{{ ',' if not loop.last }}
        {%- endfor %}
    )
)

select * from final
{%- endmacro %}
