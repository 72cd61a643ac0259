{#-
    The whole SQL of a bar family across every symbol at each minute (FEATURE_DEFINITIONS K14
    cross_sectional): the final one-minute bars of every symbol, in chunks of `chunk` (one
    week) of minutes, each symbol from `warmup_bars` of its own bars before the chunk's first
    minute, packed (minute, close, volume) and passed to the model's panel kernel
    (python_udfs/tf_bars.py panel_rows) in one call per chunk with the symbols' currencies
    (seed `symbols`); its rows are read back by udf.float8_rows. A row for (symbol, minute)
    depends only on the bars at or before that minute, so the chunking changes nothing.

    Incremental run: the panel at a minute holds every symbol with a bar then, so a write to
    any symbol recomputes every symbol from the first minute it changes: the bar holding the
    write (or the symbol's newest derived bar before it, which a snapshot at or after its end
    makes final), or the first bar after the symbol's newest stored row.

    A full build runs in the dbt var bar_family_shards shards of chunks, in parallel workers
    (bar_shards).
-#}
{% macro bar_panel_model(warmup_bars, chunk='1 week') -%}
    {%- if warmup_bars is not number or warmup_bars < 1 -%}
        {{ exceptions.raise_compiler_error("bar_panel_model: warmup_bars must be a positive integer, got '" ~ warmup_bars ~ "'") }}
    {%- endif -%}
    {%- set bars = ref('stg_bars_1m') -%}
    {%- set columns = [] -%}
    {%- for column in documented_columns(model.name) if column.name not in ('symbol', 'ts') -%}
        {%- do columns.append(column) -%}
    {%- endfor -%}
    {%- set shards = 1 if is_incremental() else _positive_var('bar_family_shards', 4) | int -%}
    {%- set chain -%}
with

universe as materialized (
    {{ bar_symbols() }}
),
{%- if is_incremental() %}

bounds as materialized (
    select
        min(least(
            coalesce(
                (
                    select max(derived.ts) from {{ ref('bars_1m_l2') }} as derived
                    where
                        derived.symbol = pending.symbol
                        and derived.ts < date_trunc('minute', pending.min_ts)
                ),
                date_trunc('minute', pending.min_ts)
            ),
            (
                select max(done.ts) from {{ this }} as done
                where done.symbol = pending.symbol
            ) + interval '1 microsecond'
        )) as from_ts
    from {{ _pending_relation(this) }} as pending
),
{%- else %}

bounds as (
    select '-infinity'::timestamptz as from_ts
),
{%- endif %}

-- the first and last bar at or after from_ts (index probes per symbol and kind of bar)
extent as materialized (
    select
        bounds.from_ts,
        min(least(first_bar.loaded, first_bar.derived)) as first_ts,
        max(greatest(first_bar.last_loaded, first_bar.last_derived)) as last_ts
    from bounds
    cross join universe
    cross join lateral (
        select
            (
                select min(loaded.ts) from {{ source('market', 'bars_1m') }} as loaded
                where loaded.symbol = universe.symbol and loaded.ts >= bounds.from_ts
            ) as loaded,
            (
                select min(derived.ts) from {{ ref('bars_1m_l2') }} as derived
                where derived.symbol = universe.symbol and derived.ts >= bounds.from_ts
            ) as derived,
            (
                select max(loaded.ts) from {{ source('market', 'bars_1m') }} as loaded
                where loaded.symbol = universe.symbol
            ) as last_loaded,
            (
                select max(derived.ts) from {{ ref('bars_1m_l2') }} as derived
                where derived.symbol = universe.symbol
            ) as last_derived
    ) as first_bar
    where bounds.from_ts is not null
    group by bounds.from_ts
),

chunks as materialized (
    select
        chunk.chunk_start,
        chunk.chunk_start + interval '{{ chunk }}' as chunk_end,
        greatest(chunk.chunk_start, extent.from_ts) as chunk_from
    from extent
    cross join lateral generate_series(
        date_trunc('week', extent.first_ts), extent.last_ts, interval '{{ chunk }}'
    ) with ordinality as chunk (chunk_start, position)
    where
        extent.first_ts is not null
        {%- if shards > 1 %}
        -- this shard's chunks: every $2-th from the $1-th (udf.bar_matrices' parameters)
        and (chunk.position - 1) % $2 = $1
        {%- endif %}
),

-- every symbol's bars of the chunk, from warmup_bars of its bars before the chunk's first
-- minute on
chunk_symbols as materialized (
    select
        chunks.chunk_start,
        chunks.chunk_end,
        chunks.chunk_from,
        universe.symbol,
        {{ nth_bar_before('universe.symbol', 'chunks.chunk_from', warmup_bars) }} as read_from
    from chunks
    cross join universe
),

packed as (
    select
        chunk_symbols.chunk_start,
        chunk_symbols.chunk_from,
        chunk_symbols.symbol,
        symbol_bars.bars
    from chunk_symbols
    cross join lateral (
        select
            udf.float8_pack_agg(
                date_part('epoch', minute_bar.ts) / 60,
                minute_bar.close,
                minute_bar.volume
                order by minute_bar.ts
            ) as bars
        from {{ bars }} as minute_bar
        where
            minute_bar.symbol = chunk_symbols.symbol
            and minute_bar.ts >= chunk_symbols.read_from
            and minute_bar.ts < chunk_symbols.chunk_end
    ) as symbol_bars
    where symbol_bars.bars is not null
),

panels as (
    select
        packed.chunk_start,
        min(packed.chunk_from) as chunk_from,
        array_agg(packed.symbol order by packed.symbol) as symbols,
        array_agg(packed.bars order by packed.symbol) as packs,
        jsonb_agg(reference.base_ccy order by packed.symbol) as base,
        jsonb_agg(reference.quote_ccy order by packed.symbol) as quote
    from packed
    left join {{ ref('symbols') }} as reference on packed.symbol = reference.symbol
    group by packed.chunk_start
),

computed as (
    select
        panels.symbols,
        case
            when kernel.error is null then kernel.value
            else udf._fail('udf.bar_rows', kernel.error, kernel.value)
        end as matrix
    from panels
    cross join lateral udf._bar_rows(
        '{{ model.name }}',
        array[{% for column in columns %}'{{ column.name }}'{{ ', ' if not loop.last }}{% endfor %}]::text[],
        panels.packs,
        jsonb_build_object(
            'from_minute', date_part('epoch', panels.chunk_from) / 60,
            'base', panels.base,
            'quote', panels.quote
        )
    ) as kernel
)
    {%- endset %}
{%- if shards > 1 %}
{{ bar_shards(chain, shards, per_symbol=false) }},
{%- else %}
{{ chain }},
{%- endif %}

final as (
    select
        computed.symbols[rows_out._symbol::integer + 1] as symbol,
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
    cross join lateral udf.float8_rows(computed.matrix, {{ columns | length + 2 }}) as rows_out (
        _minute double precision,
        _symbol double precision,
        {%- for column in columns %}
        {{ column.name }} double precision{{ ',' if not loop.last }}
        {%- endfor %}
    )
)

select * from final
{%- endmacro %}
