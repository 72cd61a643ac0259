{#-
    A model's version: the md5 of everything its compiled SQL is made of, its own code, the
    source of every macro of this project it calls (and those they call), the values of the
    vars they read and the dbt version, so that a change to any of them is a new version, and
    rebuilding the same project never is. (The compiled SQL itself differs between a full
    build and an incremental run of the same definition.) Empty at parse time.
-#}
{% macro model_version(model_name) -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ model_name] -%}
    {%- set parts = [node.raw_code] -%}
    {%- set seen = [] -%}
    {%- set frontier = namespace(ids=node.depends_on.macros | list) -%}
    {%- for _ in range(20) if frontier.ids -%}
        {%- set next_ids = [] -%}
        {%- for macro_id in frontier.ids | sort if macro_id not in seen -%}
            {%- do seen.append(macro_id) -%}
            {%- set package, name = macro_id.split('.')[1], macro_id.split('.')[2] -%}
            {%- if package == project_name -%}
                {%- set found = context[name].macro -%}
                {%- do parts.append(found.macro_sql) -%}
                {%- do next_ids.extend(found.depends_on.macros) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set frontier.ids = next_ids -%}
    {%- endfor -%}
    {%- set text = parts | join('\n') -%}
    {%- for name in modules.re.findall("var\\(\\s*'([A-Za-z_0-9]+)'", text) | unique | sort -%}
        {%- do parts.append(name ~ '=' ~ var(name, '')) -%}
    {%- endfor -%}
    {%- do parts.append(dbt_version) -%}
    {{ return(local_md5(parts | join('\n'))) }}
{%- endmacro %}
