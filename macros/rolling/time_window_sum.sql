{#-
    Sum over (ts - W, ts] from a running_sum column and the term it added on each row:
    running at t minus running just before the window's first row.
-#}
{% macro time_window_sum(running, term, interval) -%}
    ({{ running }} - first_value({{ running }} - coalesce({{ term }}, 0)) {{ _symbol_window(time_window_frame(interval)) }})
{%- endmacro %}
