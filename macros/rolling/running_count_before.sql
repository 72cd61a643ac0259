{#- A running_count column's value just before this row (see running_sum_before). -#}
{% macro running_count_before(running, expr) -%}
    ({{ running }} - (({{ expr }}) is not null)::int)
{%- endmacro %}
