{#-
    Whether this server has the exact window functions of tickfeatures_native (migration 0030,
    native/tf_windows.c): the L2 families' rolling statistics then use them, one sweep a
    partition on exact integers; else the numeric running sums (the same values, up to the
    last bit of a sum, 3-10x slower). The var tf_numeric_windows forces the numeric
    formulation (the test that compares the two builds both). Decided when a model compiles.
-#}
{% macro native_windows() -%}
    {%- if var('tf_numeric_windows', false) or not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set found = run_query(
        "select exists (select from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace"
        ~ " where n.nspname = 'udf' and p.proname = 'window_std' and p.prokind = 'w')"
    ) -%}
    {{ return(found.columns[0].values()[0]) }}
{%- endmacro %}

{#-
    A series as the running sums read it: numeric (converted once, in a CTE of its own), or
    as it is for the window functions.
-#}
{% macro exact_series(expr) -%}
    {%- if native_windows() -%}
        ({{ expr }})::double precision
    {%- else -%}
        ({{ expr }})::numeric
    {%- endif -%}
{%- endmacro %}
