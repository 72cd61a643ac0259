{#- Size at one level; a missing level (NULL price or NULL size) counts as 0 (section T4). -#}
{% macro level_size(side, level, relation=none) -%}
    {%- set s = _book_side(side) -%}
    {%- set p = (relation ~ '.') if relation else '' -%}
    case
        when {{ p }}{{ s }}_price_{{ level }} is null then 0
        else coalesce({{ p }}{{ s }}_size_{{ level }}, 0)
    end
{%- endmacro %}
