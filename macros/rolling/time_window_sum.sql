{#-
    Sum over (ts - W, ts], W in seconds, from a running_sum column and the term it added on
    each row: running at t minus running just before the window's first row. float8, or
    exact numeric.
-#}
{% macro time_window_sum(running, term, seconds, exact=false) -%}
    ({{ running }} - first_value({{ running }} - coalesce(({{ term }})::numeric, 0)) {{ _symbol_window(time_window_frame(seconds)) }}){{ '' if exact else '::double precision' }}
{%- endmacro %}
