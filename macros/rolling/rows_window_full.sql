{#- True when all n inputs of the row window t-n+1..t are non-NULL (T1), from a running_count. -#}
{% macro rows_window_full(running_count, n) -%}
    ({{ running_count }} - lag({{ running_count }}, {{ n }}, 0::bigint) {{ _symbol_window() }} = {{ n }})
{%- endmacro %}
