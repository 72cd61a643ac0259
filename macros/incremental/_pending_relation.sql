{#- Name of the session-temporary table listing the files a model run is processing. -#}
{% macro _pending_files_relation(model_relation) -%}
    _tf_pending_{{ model_relation.identifier }}
{%- endmacro %}
