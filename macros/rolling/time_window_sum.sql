{#-
    Sum over (ts - W, ts], W in seconds, from a running_sum (or running_count) column and its
    <running>_before column (running_sum_before): running at t less running just before the
    window's first row. float8, or exact numeric.
-#}
{% macro time_window_sum(running, seconds, exact=false) -%}
    ({{ running }} - first_value({{ running }}_before) {{ _symbol_window(time_window_frame(seconds)) }}){{ '' if exact else '::double precision' }}
{%- endmacro %}
