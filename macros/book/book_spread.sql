{#- Quoted spread s = a_1 - b_1 in price units (A2); negative on a crossed book. -#}
{% macro book_spread(relation=none) -%}
    {%- set p = (relation ~ '.') if relation else '' -%}
    ({{ p }}ask_price_1 - {{ p }}bid_price_1)
{%- endmacro %}
