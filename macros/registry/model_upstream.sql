{#- The models and sources a model reads (its direct upstream), as schema-less names. -#}
{% macro model_upstream(model_name) -%}
    {%- set found = [] -%}
    {%- if execute -%}
        {%- for unique_id in graph.nodes['model.' ~ project_name ~ '.' ~ model_name].depends_on.nodes -%}
            {%- if unique_id.startswith('source.') -%}
                {%- do found.append(unique_id.split('.')[2:] | join('.')) -%}
            {%- else -%}
                {%- do found.append(unique_id.split('.')[-1]) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found | sort) }}
{%- endmacro %}
