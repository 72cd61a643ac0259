{#- Sum of squared level sizes over levels 1..10 of the given sides; missing level = 0 (T4). -#}
{% macro book_sum_of_squares(sides=['bid', 'ask']) -%}
    (
    {%- for side in sides %}{% for i in range(1, 11) %}
        {{ '+ ' if not (loop.first and side == sides[0]) }}power({{ level_size(side, i) }}, 2)
    {%- endfor %}{% endfor %}
    )
{%- endmacro %}
