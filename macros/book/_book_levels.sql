{#- Validate a level count k (1..10) at compile time and return it. -#}
{% macro _book_levels(k) -%}
    {%- if k is not number or k < 1 or k > 10 -%}
        {{ exceptions.raise_compiler_error("book levels must be an integer 1..10, got '" ~ k ~ "'") }}
    {%- endif -%}
    {{ k }}
{%- endmacro %}
