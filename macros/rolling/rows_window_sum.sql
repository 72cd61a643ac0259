{#- Sum over the row window t-n+1..t, from a running_sum column. -#}
{% macro rows_window_sum(running, n) -%}
    {%- if n is not number or n < 1 -%}
        {{ exceptions.raise_compiler_error("rows_window_sum: n must be a positive integer, got '" ~ n ~ "'") }}
    {%- endif -%}
    ({{ running }} - lag({{ running }}, {{ n }}, 0::double precision) {{ _symbol_window() }})
{%- endmacro %}
