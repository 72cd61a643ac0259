{#- Cumulative size over levels 1..k of one side, D^b_k or D^a_k (A6, A7; T4). -#}
{% macro book_depth(side, k=10, relation=none) -%}
    {%- set n = _book_levels(k) | int -%}
    (
    {%- for i in range(1, n + 1) %}
        {{ '+ ' if not loop.first }}{{ level_size(side, i, relation) }}
    {%- endfor %}
    )
{%- endmacro %}
