{#-
    Running sum of expr in numeric from the first row in scope, NULL terms counting 0.
    Window sums are exact differences of running sums (rows_window_sum, time_window_sum):
    O(rows) where a float8 moving frame is O(rows x window), and exact, so a window's sum
    does not depend on where the running sum started (incremental equals full) nor on how
    much history came before it.
-#}
{% macro running_sum(expr) -%}
    sum(coalesce(({{ expr }})::numeric, 0)) {{ _symbol_window('rows between unbounded preceding and current row') }}
{%- endmacro %}
