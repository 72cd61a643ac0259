{#-
    A float8 value as the numeric it exactly is. A plain ::numeric cast keeps 15 significant
    digits; float8's text output (PostgreSQL 12+) is the shortest string that reads back to
    the same double, so going through text loses nothing.
-#}
{% macro exact_numeric(expr) -%}
    ({{ expr }})::text::numeric
{%- endmacro %}
