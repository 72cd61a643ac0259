{#-
    The state of the flow family's exponential moving averages (T13) after every snapshot:
    udf.ewm_means' state for e_n and |e_n| at spans 10, 30, 100 and 300, means first (1..8),
    working weights after (9..16). Not features: `flow` divides the means.
    Kept per row so that an incremental run starts from the exact state a full build reached
    at the row before its first new one, late rows included: the EMA never forgets its start
    exactly, so a warm-up could only approximate it (6,400 rows a symbol for span 300 to fall
    below 1e-18), and the same operations from the same state give the same bits.
-#}
-- depends_on: {{ ref('stg_l2_snapshots') }}
{%- set spans = [10, 30, 100, 300] %}
with

snapshots as (
    {{ l2_snapshots_scoped(warmup_rows=1) }}
),

paired as (
    select
        snapshots.*,
        {{ previous_level(1) }}
    from snapshots
),

events as (
    select
        symbol,
        ts,
        in_output,
        {{ event_ofi(1) }} as e_n
    from paired
    {{ evaluate_once(ordered=true) }}
),

seeds as (
    {%- if is_incremental() %}
    -- per symbol, the state stored at the last row before its first row to (re)compute
    select
        output_start.symbol,
        stored.ewm_state as seed
    from (
        select symbol, min(ts) as from_ts from events where in_output group by symbol
    ) as output_start
    left join lateral (
        select done.ewm_state from {{ this }} as done
        where done.symbol = output_start.symbol and done.ts < output_start.from_ts
        order by done.ts desc
        limit 1
    ) as stored on true
    {%- else %}
    select
        null::text as symbol,
        null::double precision[] as seed
    where false
    {%- endif %}
),

final as (
    select
        events.symbol,
        events.ts,
        udf.ewm_means(
            seeds.seed,
            array[{% for n in spans %}events.e_n, {% endfor %}{% for n in spans %}abs(events.e_n){{ ', ' if not loop.last }}{% endfor %}],
            array[{% for n in spans * 2 %}2.0 / {{ n + 1 }}{{ ', ' if not loop.last }}{% endfor %}]::double precision[]
        ) over (
            partition by events.symbol order by events.ts rows between unbounded preceding and current row
        ) as ewm_state
    from events
    left join seeds on events.symbol = seeds.symbol
    -- the warm-up row only gives the first new row its e_n: the state continues from the seed
    where events.in_output
)

select * from final
