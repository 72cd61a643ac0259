{#- Mid price m = (b_1 + a_1) / 2 (A1); NULL when a level-1 price is missing (T5). -#}
{% macro book_mid(relation=none) -%}
    {%- set p = (relation ~ '.') if relation else '' -%}
    ({{ p }}bid_price_1 + {{ p }}ask_price_1) / 2
{%- endmacro %}
