{#- dbt's view materialization, with the swap of replace_relation: the views on the view stay. -#}
{% materialization view, adapter='postgres' -%}
    {{ return(build_and_replace('view')) }}
{%- endmaterialization %}
