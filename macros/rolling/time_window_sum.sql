{#-
    Sum over (ts - W, ts] from a running_sum column and the term it added on each row:
    running at t minus running just before the window's first row; float8.
-#}
{% macro time_window_sum(running, term, seconds) -%}
    ({{ running }} - first_value({{ running }} - coalesce(({{ term }})::numeric, 0)) {{ _symbol_window(time_window_frame(seconds)) }})::double precision
{%- endmacro %}
