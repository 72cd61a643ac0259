{#- Running count of the non-NULL values of expr (to test window completeness, T1). -#}
{% macro running_count(expr) -%}
    count({{ expr }}) {{ _symbol_window('rows between unbounded preceding and current row') }}
{%- endmacro %}
