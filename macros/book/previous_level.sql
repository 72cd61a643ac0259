{#- The previous snapshot's timestamp and its price and size columns for levels 1..k, as prev_*. -#}
{% macro previous_level(k=1) -%}
        lag(ts) {{ _symbol_window() }} as prev_ts,
    {%- for i in range(1, _book_levels(k) | int + 1) -%}
        {%- for column in ['bid_price', 'bid_size', 'ask_price', 'ask_size'] %}
        lag({{ column }}_{{ i }}) {{ _symbol_window() }} as prev_{{ column }}_{{ i }}{{ ',' if not loop.last }}
        {%- endfor %}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
