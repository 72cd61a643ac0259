{#- Cumulative notional sum(price * size) over levels 1..k of one side, ND_k (A7; T4). -#}
{% macro book_notional(side, k=10, relation=none) -%}
    {%- set n = _book_levels(k) | int -%}
    {%- set s = _book_side(side) -%}
    {%- set p = (relation ~ '.') if relation else '' -%}
    (
    {%- for i in range(1, n + 1) %}
        {{ '+ ' if not loop.first }}coalesce({{ p }}{{ s }}_price_{{ i }} * {{ p }}{{ s }}_size_{{ i }}, 0)
    {%- endfor %}
    )
{%- endmacro %}
