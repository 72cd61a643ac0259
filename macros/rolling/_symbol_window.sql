{#- The window every L2 feature uses: one symbol, in timestamp order, with an optional frame. -#}
{% macro _symbol_window(frame='') -%}
    over (partition by symbol order by ts {{ frame }})
{%- endmacro %}
