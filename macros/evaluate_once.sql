{#-
    Ends a CTE whose columns are costly expressions that later CTEs read several times.
    PostgreSQL pulls a plain subquery up into the query that reads it and substitutes each
    column's expression at every reference (it does not share common subexpressions): a
    column read by five window functions is computed five times per row. OFFSET 0 keeps the
    subquery apart, so each expression runs once per row.
    ordered=true where the rows come from a symbol window, already in (symbol, ts) order: the
    planner then knows that order and the windows after it do not sort again (without it,
    1M rows are re-sorted). Elsewhere it would add a sort.
-#}
{% macro evaluate_once(ordered=false) -%}
    {%- if ordered %}order by symbol, ts {% endif -%}
    offset 0
{%- endmacro %}
