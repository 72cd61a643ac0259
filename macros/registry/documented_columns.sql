{#-
    The columns a model's YAML documents, in order, from the project graph (so marts and the
    feature catalog follow the YAML and are never maintained by hand). Empty at parse time.
-#}
{% macro documented_columns(model_name) -%}
    {%- set found = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and node.name == model_name -%}
                {%- for column in node.columns.values() -%}
                    {%- do found.append(column) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if not found -%}
            {{ exceptions.raise_compiler_error("documented_columns: model '" ~ model_name ~ "' has no documented columns") }}
        {%- endif -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}
