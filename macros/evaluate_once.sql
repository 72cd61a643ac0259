{#-
    Ends a CTE whose columns are costly expressions that later CTEs read several times.
    PostgreSQL pulls a plain subquery up into the query that reads it and substitutes each
    column's expression at every reference (it does not share common subexpressions): a
    column read by five window functions is computed five times per row. OFFSET 0 keeps the
    subquery apart, so each expression runs once per row.
-#}
{% macro evaluate_once() -%}
    offset 0
{%- endmacro %}
