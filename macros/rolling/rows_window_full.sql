{#- True when all n inputs of the row window t-n+1..t (or, with skip=k, t-k-n+1..t-k) are non-NULL (T1). -#}
{% macro rows_window_full(running_count, n, skip=0) -%}
    {%- set latest = running_count if skip == 0 else 'lag(' ~ running_count ~ ', ' ~ skip ~ ', 0::bigint) ' ~ _symbol_window() -%}
    ({{ latest }} - lag({{ running_count }}, {{ n + skip }}, 0::bigint) {{ _symbol_window() }} = {{ n }})
{%- endmacro %}
