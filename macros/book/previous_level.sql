{#-
    The previous snapshot's timestamp and its price and size columns for levels 1..k, as prev_*.
    One lag() of an array of all the columns, subscripted per column: PostgreSQL evaluates
    identical window calls once, so this is one lag per row where a lag per column costs twice
    as much (10 levels: 40 lags).
-#}
{% macro previous_level(k=1) -%}
    {%- set columns = [] -%}
    {%- for i in range(1, _book_levels(k) | int + 1) -%}
        {%- for column in ['bid_price', 'bid_size', 'ask_price', 'ask_size'] -%}
            {%- do columns.append(column ~ '_' ~ i) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set previous_book = '(lag(array[' ~ columns | join(', ') ~ ']) ' ~ _symbol_window() ~ ')' -%}
        lag(ts) {{ _symbol_window() }} as prev_ts,
    {%- for column in columns %}
        {{ previous_book }}[{{ loop.index }}] as prev_{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
