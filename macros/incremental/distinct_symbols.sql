{#-
    The body of a recursive CTE `symbols (symbol)` listing the distinct symbols of `relation`
    by a loose index scan: one index probe per symbol instead of a scan of every row. The
    last row is NULL (filter `where symbols.symbol is not null`). Use as
    `with recursive symbols as ({{ distinct_symbols(relation) }}), ...`; `name`: the CTE's
    name when it is not `symbols`.
-#}
{% macro distinct_symbols(relation, name='symbols') -%}
        (select first_row.symbol from {{ relation }} as first_row order by first_row.symbol limit 1)
        union all
        select (
            select next_row.symbol from {{ relation }} as next_row
            where next_row.symbol > {{ name }}.symbol
            order by next_row.symbol limit 1
        )
        from {{ name }}
        where {{ name }}.symbol is not null
{%- endmacro %}
