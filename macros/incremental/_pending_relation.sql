{#- Name of the session-temporary table listing, per symbol, the earliest write a model run has to recompute from (refresh_begin). -#}
{% macro _pending_relation(model_relation) -%}
    _tf_pending_{{ model_relation.identifier }}
{%- endmacro %}
