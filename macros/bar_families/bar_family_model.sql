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

    Families across symbols (K14): `peers` names the slots of other symbols whose bars the
    kernel reads (bar_peer_map: the reference symbols and the currency groups). A write to a
    peer recomputes the symbols it is a peer of from the first minute it changes; each peer's
    (minute, close) from tf_bar_common.PEER_WARMUP_BARS bars before the earliest read_from of
    the symbols reading it are extra inputs. `common_warmup_slots`: the warm-up also reaches
    back to the warmup_bars-th minute before from_ts at which the symbol and the peer of each
    slot both have a bar (error_correction's windows of common minutes).
    A full build runs in the dbt var bar_family_shards shards of symbols, in parallel
    workers (bar_shards); an incremental run is one query.
    `refit`: the heavy families' refit window and stride (dbt vars bar_heavy_window,
    bar_heavy_stride) go to the kernel. `seed_params`: columns of the `symbols` seed passed to
    the kernel by name (microstructure_bars: vpin_bucket_volume).
-#}
{% macro bar_family_model(
    warmup_bars, scales=none, scale_warmup_buckets=0, peers=none, refit=false,
    common_warmup_slots=none, seed_params=none
) -%}
    {%- if warmup_bars is not number or warmup_bars < 0 -%}
        {{ exceptions.raise_compiler_error("bar_family_model: warmup_bars must be a non-negative integer, got '" ~ warmup_bars ~ "'") }}
    {%- endif -%}
    {%- set scales = scales or {} -%}
    {%- set bars = ref('stg_bars_1m') -%}
    {%- set columns = [] -%}
    {%- for column in documented_columns(model.name) if column.name not in ('symbol', 'ts') -%}
        {%- do columns.append(column) -%}
    {%- endfor -%}
    {%- set shards = 1 if is_incremental() else _positive_var('bar_family_shards', 4) | int -%}
    {%- set chain -%}
with
{%- if peers %}

universe as materialized (
    {{ bar_symbols() }}
),

peer_map as materialized (
    {{ bar_peer_map(peers, 'universe') }}
),
{%- endif %}
{%- if is_incremental() %}
{%- if peers %}

-- a peer's write changes this symbol's rows from the minute of the peer's first changed bar:
-- the bar holding the write, or its newest derived bar before (which a snapshot at or after
-- its end makes final)
peer_late as materialized (
    select
        pending.symbol,
        coalesce(
            (
                select max(derived.ts) from {{ ref('bars_1m_l2') }} as derived
                where derived.symbol = pending.symbol and derived.ts < date_trunc('minute', pending.min_ts)
            ),
            date_trunc('minute', pending.min_ts)
        ) as min_ts
    from {{ _pending_relation(this) }} as pending
),

bounds as materialized (
    select
        universe.symbol,
        (select max(done.ts) from {{ this }} as done where done.symbol = universe.symbol) as done_until,
        least(
            (
                select pending.min_ts from {{ _pending_relation(this) }} as pending
                where pending.symbol = universe.symbol
            ),
            (
                select min(peer_late.min_ts)
                from peer_map
                inner join peer_late on peer_map.peer = peer_late.symbol
                where peer_map.symbol = universe.symbol
            )
        ) as late_from
    from universe
),
{%- else %}

bounds as materialized (
    select
        pending.symbol,
        (select max(done.ts) from {{ this }} as done where done.symbol = pending.symbol) as done_until,
        pending.min_ts as late_from
    from {{ _pending_relation(this) }} as pending
),
{%- endif %}

scope as materialized (
    select
        bounds.symbol,
        case
            when bounds.done_until is null then '-infinity'::timestamptz
            else least(bounds.late_from, bounds.done_until + interval '1 microsecond')
        end as from_ts
    from bounds
    where bounds.late_from is not null
),
{%- else %}

symbols as (
    {{ bar_symbols() }}
),

scope as materialized (
    select
        symbols.symbol,
        '-infinity'::timestamptz as from_ts
    {%- if shards > 1 %}
    -- this shard's symbols: every $2-th by name from the $1-th (udf.bar_matrices' parameters)
    from (
        select
            symbols.symbol,
            row_number() over (order by symbols.symbol) - 1 as position
        from symbols
    ) as symbols
    where symbols.position % $2 = $1
    {%- else %}
    from symbols
    {%- endif %}
),
{%- endif %}

warm_scope as materialized (
    select
        scope.symbol,
        scope.from_ts,
        {%- if warmup_bars > 0 %}
        -- the warmup_bars-th final bar before from_ts
        {%- if common_warmup_slots %}
        -- or, if earlier, the warmup_bars-th minute before from_ts with a bar of both the
        -- symbol and the peer of each slot named (none: from the symbol's first bar)
        least(
            {{ nth_bar_before('scope.symbol', 'scope.from_ts', warmup_bars) }},
            (
                select min(coalesce((
                    select own_bar.ts from {{ ref('stg_bars_1m') }} as own_bar
                    where
                        own_bar.symbol = scope.symbol
                        and own_bar.ts < scope.from_ts
                        and exists (
                            select from {{ ref('stg_bars_1m') }} as peer_bar
                            where peer_bar.symbol = peer_map.peer and peer_bar.ts = own_bar.ts
                        )
                    order by own_bar.ts desc
                    limit 1 offset {{ warmup_bars - 1 }}
                ), '-infinity'::timestamptz))
                from peer_map
                where
                    peer_map.symbol = scope.symbol
                    and peer_map.slot in ({% for slot in common_warmup_slots %}{{ peers.index(slot) }}{{ ', ' if not loop.last }}{% endfor %})
            )
        ) as read_from,
        {%- else %}
        {{ nth_bar_before('scope.symbol', 'scope.from_ts', warmup_bars) }} as read_from,
        {%- endif %}
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
            count(*) as total,
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
    -- a symbol without bars from from_ts on has nothing to write (a peer's write after its
    -- last bar)
    where symbol_bars.total > symbol_bars.start
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
{%- if peers %}

-- each peer's bars once, from PEER_WARMUP_BARS bars before the earliest read_from of the
-- symbols that read it
peer_from as materialized (
    select
        peer_reads.peer,
        {{ nth_bar_before('peer_reads.peer', 'peer_reads.read_from', 100) }} as read_from
    from (
        select
            peer_map.peer,
            min(warm_scope.read_from) as read_from
        from peer_map
        inner join warm_scope on peer_map.symbol = warm_scope.symbol
        group by peer_map.peer
    ) as peer_reads
),

peer_bars as materialized (
    select
        peer_from.peer,
        (
            select
                udf.float8_pack_agg(
                    date_part('epoch', peer_bar.ts) / 60,
                    peer_bar.close
                    order by peer_bar.ts
                )
            from {{ bars }} as peer_bar
            where peer_bar.symbol = peer_from.peer and peer_bar.ts >= peer_from.read_from
        ) as bars
    from peer_from
),
{%- endif %}

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
    {%- if seed_params %}
    left join {{ ref('symbols') }} as reference on packed.symbol = reference.symbol
    {%- endif %}
    {%- if peers %}
    cross join lateral (
        select
            array_agg(peer_map.slot order by peer_map.slot, peer_map.peer) as slot_of,
            array_agg(peer_bars.bars order by peer_map.slot, peer_map.peer) as packs
        from peer_map
        inner join peer_bars on peer_map.peer = peer_bars.peer
        where peer_map.symbol = packed.symbol and peer_bars.bars is not null
    ) as symbol_peers
    {%- endif %}
    cross join lateral udf._bar_rows(
        '{{ model.name }}',
        array[{% for column in columns %}'{{ column.name }}'{{ ', ' if not loop.last }}{% endfor %}]::text[],
        array[packed.bars{% for scale in scales %}, {{ scale }}_packed.bars{% endfor %}]
        {%- if peers %} || coalesce(symbol_peers.packs, '{}'::bytea []){% endif %},
        jsonb_build_object(
            'first_close', packed.first_close,
            'start', packed.start,
            'prev', packed.prev,
            'scales', jsonb_build_array({% for scale in scales %}'{{ scale }}'{{ ', ' if not loop.last }}{% endfor %})
            {%- if peers %},
            'peer_slots', jsonb_build_array({% for slot in peers %}'{{ slot }}'{{ ', ' if not loop.last }}{% endfor %}),
            'peer_slot_of', coalesce(to_jsonb(symbol_peers.slot_of), '[]'::jsonb)
            {%- endif %}
            {%- if refit %},
            'refit_window', {{ _positive_var('bar_heavy_window', 1440) }},
            'refit_stride', {{ _positive_var('bar_heavy_stride', 60) }}
            {%- endif %}
            {%- for name in seed_params or [] %},
            '{{ name }}', reference.{{ name }}
            {%- endfor %}
        )
    ) as kernel
)
    {%- endset %}
{%- if shards > 1 %}
{{ bar_shards(chain, shards, per_symbol=true) }},
{%- else %}
{{ chain }},
{%- endif %}

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



{#- A dbt var that must be a positive integer, as SQL text; a one-line compile error otherwise. -#}
{% macro _positive_var(name, default) -%}
    {%- set value = var(name, default) -%}
    {%- if value is not number or value < 1 or value != value | int -%}
        {{ exceptions.raise_compiler_error("dbt var " ~ name ~ " must be a positive integer, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ value | int }}
{%- endmacro %}
