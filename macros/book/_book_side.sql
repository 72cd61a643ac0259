{#- Validate a book side argument; return the column prefix ('bid' or 'ask'). -#}
{% macro _book_side(side) -%}
    {%- if side not in ('bid', 'ask') -%}
        {{ exceptions.raise_compiler_error("book side must be 'bid' or 'ask', got '" ~ side ~ "'") }}
    {%- endif -%}
    {{ side }}
{%- endmacro %}
