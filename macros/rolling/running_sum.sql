{#-
    Running sum of expr from the first row in scope, NULL terms counting 0. Window sums are
    differences of running sums (rows_window_sum, time_window_sum): O(rows) where a float8
    moving frame would be O(rows x window). The rounding error is relative to the terms'
    magnitude, as section T17 allows for sums whose terms cancel.
-#}
{% macro running_sum(expr) -%}
    sum(coalesce({{ expr }}, 0)::double precision) {{ _symbol_window('rows between unbounded preceding and current row') }}
{%- endmacro %}
