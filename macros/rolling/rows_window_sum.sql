{#- Sum over the row window t-n+1..t from a running_sum column: float8, or exact numeric. -#}
{% macro rows_window_sum(running, n, exact=false) -%}
    {%- if n is not number or n < 1 -%}
        {{ exceptions.raise_compiler_error("rows_window_sum: n must be a positive integer, got '" ~ n ~ "'") }}
    {%- endif -%}
    ({{ running }} - lag({{ running }}, {{ n }}, 0::numeric) {{ _symbol_window() }}){{ '' if exact else '::double precision' }}
{%- endmacro %}
