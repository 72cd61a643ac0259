{#-
    `sql_text` with every relation's database qualifier removed ("db"."features"."x" becomes
    "features"."x"), for SQL that is stored in the database and run later: the bodies of the
    refresh procedures and of features.latest_<kind>(). Kept, the qualifier breaks them when
    the database is restored under another name, renamed, or copied from a template
    ("cross-database references are not implemented").
-#}
{% macro without_database(sql_text) -%}
    {{ return(sql_text | replace('"' ~ target.database ~ '".', '')) }}
{%- endmacro %}
