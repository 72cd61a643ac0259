{#-
    VWAP of a market order of size `quantity` walking one side of the book from level 1
    (A8): a buy walks the asks, a sell the bids. Fill at level i is
    q_i = min(size_i, max(Q - sum_{j<i} size_j, 0)); missing and zero-size levels fill
    nothing (T6). NULL when the visible depth over all 10 levels is below Q.
-#}
{% macro book_walk_vwap(side, quantity, relation=none) -%}
    {%- set s = _book_side(side) -%}
    {%- set p = (relation ~ '.') if relation else '' -%}
    case
        when {{ book_depth(side, 10, relation) }} >= {{ quantity }} and {{ quantity }} > 0 then (
        {%- for i in range(1, 11) %}
            {{ '+ ' if not loop.first }}least(
                {{ level_size(side, i, relation) }},
                greatest({{ quantity }} - {% if i == 1 %}0{% else %}{{ book_depth(side, i - 1, relation) }}{% endif %}, 0)
            ) * coalesce({{ p }}{{ s }}_price_{{ i }}, 0)
        {%- endfor %}
        ) / {{ quantity }}
    end
{%- endmacro %}
