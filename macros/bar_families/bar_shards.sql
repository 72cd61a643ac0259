{#-
    A bar family's full build on several cores. `chain` is the model's SQL up to its
    `computed` CTE, which holds one kernel result (`matrix`) per symbol (`per_symbol`: column
    `symbol`) or per panel (column `symbols`, the symbols of its rows), and which restricts
    itself to shard $1 of $2 (by symbol, or by panel chunk). Each of `shards` calls of
    udf.bar_matrices runs the chain for one shard in its own query; PostgreSQL runs the calls
    under a Parallel Append in parallel workers (at most max_parallel_workers_per_gather at
    once, the next shard to the first worker free), so the kernels use several cores while the
    leader reads the matrices back into rows and writes them. Without parallel workers the
    leader runs the shards one after the other: the same rows.
-#}
{% macro bar_shards(chain, shards, per_symbol) -%}
    {%- call set_sql_header(config) %}
-- a leader that ran a shard itself would stop reading the workers' results while it did
set local parallel_leader_participation = off;
    {%- endcall %}
with

computed as (
    {%- for shard in range(shards) %}
    select
        {{ 'shard_rows.symbols[1] as symbol' if per_symbol else 'shard_rows.symbols' }},
        shard_rows.matrix
    from udf.bar_matrices(
        $tf_shard$
{{ chain }}

select
    {{ 'array[computed.symbol] as symbols' if per_symbol else 'computed.symbols' }},
    computed.matrix
from computed
        $tf_shard$,
        {{ shard }},
        {{ shards }}
    ) as shard_rows
    {{- '\n    union all' if not loop.last }}
    {%- endfor %}
)
{%- endmacro %}
