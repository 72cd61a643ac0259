{#- dbt's table materialization, with the swap of replace_relation: the views on the table stay. -#}
{% materialization table, adapter='postgres' -%}
    {{ return(build_and_replace('table')) }}
{%- endmaterialization %}
