{#-
    Swap `intermediate` in for `target` inside the current transaction with
    ops.replace_relation (migration 0014): the views reading `target` read the new relation
    from then on, its grants carry over, and readers only wait for the commit, where dbt's
    own swap renames and then drops the old relation with CASCADE, which drops every view
    on it (features.l2_features among them) until something rebuilds them.
-#}
{% macro replace_relation(target, intermediate) -%}
    {%- call statement('replace_relation') -%}
        select ops.replace_relation('{{ target }}'::regclass, '{{ intermediate }}'::regclass)
    {%- endcall -%}
    {#- dbt's relation cache needs nothing: `target` exists under its name as before, the views
        on it still read it, and `intermediate` was never cached (a statement created it) -#}
{%- endmacro %}
