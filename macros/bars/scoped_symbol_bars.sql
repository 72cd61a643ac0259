{#-
    The FROM of an incremental bar model's new bars: for each symbol of `scope` (bucket_scope),
    its rows of `relation` from scope.from_ts on, as `symbol_bars`. The lateral with
    `offset 0` keeps it a per-symbol index range scan of both kinds of bars (a plain join
    lets the planner scan the union whole).
-#}
{% macro scoped_symbol_bars(relation) -%}
    from scope
    cross join lateral (
        select minute_bar.*
        from {{ relation }} as minute_bar
        where minute_bar.symbol = scope.symbol and minute_bar.ts >= scope.from_ts
        offset 0  -- per symbol, index range scans of both kinds of bars
    ) as symbol_bars
{%- endmacro %}
