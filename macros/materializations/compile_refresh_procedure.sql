{#-
    The incremental run of this model as a procedure, features.refresh_<model>(), for
    `call features.refresh()` (migration 0017): the statements the incremental materialization
    runs inside its transaction, rendered now (its pre-hooks, the model's SQL into a temporary
    table, the delete+insert of its strategy, its post-hooks), each run by EXECUTE, so that
    the procedure needs no dbt. Recorded in ops.refresh_procedures with the md5 of the
    statements and the models it reads. The model's table must exist (a first build is dbt's).
    A continuous aggregate (TSL edition) gets its hooks only, so that the models following it
    advance: real-time aggregation serves what is newer than its materialized part, and its
    refresh policy (every minute) re-materializes late rows older than that.
-#}
{% macro compile_refresh_procedure() -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set continuous = config.get('continuous_aggregate') and continuous_aggregates_available() -%}
    {%- if existing_relation is none or (existing_relation.is_view and not continuous) -%}
        {{ exceptions.raise_compiler_error(this ~ " has not been built yet: run `tickfeatures refresh` before `tickfeatures schedule install`") }}
    {%- endif -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set temp_relation = make_temp_relation(target_relation) -%}
    {%- set statements = [] -%}
    {%- for hook in pre_hooks | selectattr('transaction') -%}
        {%- do statements.append(render(hook.get('sql')) | trim) -%}
    {%- endfor -%}
    {%- if not continuous -%}
        {%- do statements.append('drop table if exists ' ~ temp_relation) -%}
        {%- do statements.append(get_create_table_as_sql(True, temp_relation, sql)) -%}
        {%- set strategy = adapter.get_incremental_strategy_macro(context, config.get('incremental_strategy') or 'default') -%}
        {%- do statements.append(strategy({
            'target_relation': target_relation,
            'temp_relation': temp_relation,
            'unique_key': config.get('unique_key'),
            'dest_columns': adapter.get_columns_in_relation(existing_relation),
            'incremental_predicates': config.get('incremental_predicates'),
        })) -%}
    {%- endif -%}
    {%- for hook in post_hooks | selectattr('transaction') -%}
        {%- do statements.append(render(hook.get('sql')) | trim) -%}
    {%- endfor -%}
    {%- if not continuous -%}
        {%- do statements.append('drop table if exists ' ~ temp_relation) -%}
    {%- endif -%}
    {%- set stored = [] -%}
    {%- for statement in statements -%}
        {%- do stored.append(without_database(statement)) -%}
    {%- endfor -%}
    {%- set statements = stored -%}
    {%- set body = statements | reject('equalto', '') | join(';\n') -%}
    {%- if '$tf_statement$' in body -%}
        {{ exceptions.raise_compiler_error("the compiled SQL of " ~ this ~ " holds the quote $tf_statement$") }}
    {%- endif -%}
    {%- set procedure = target_relation.schema ~ '.refresh_' ~ target_relation.identifier -%}
    {%- set reads = _incremental_models_read(model.depends_on.nodes) -%}
    {%- call statement('main') -%}
        create or replace procedure {{ procedure }}()
        language plpgsql
        as $tf_procedure$
        begin
        {%- for statement in statements | reject('equalto', '') %}
            execute $tf_statement${{ statement }}$tf_statement$;
        {%- endfor %}
        end
        $tf_procedure$;
        comment on procedure {{ procedure }}() is
            'The incremental refresh of {{ target_relation }}, compiled by `tickfeatures schedule install`; called by features.refresh().';
        insert into ops.refresh_procedures (model, procedure, depends_on, checksum, installed_at)
        values (
            '{{ target_relation.identifier }}',
            '{{ procedure }}',
            array[{% for name in reads %}'{{ name }}'{{ ', ' if not loop.last }}{% endfor %}]::text[],
            '{{ local_md5(body) }}',
            now()
        )
        on conflict (model) do update set
            procedure = excluded.procedure,
            depends_on = excluded.depends_on,
            checksum = excluded.checksum,
            installed_at = excluded.installed_at
    {%- endcall -%}
    {%- do adapter.commit() -%}
    {{ return({'relations': [target_relation]}) }}
{%- endmacro %}


{#-
    The incremental models that the nodes `node_ids` are or read, through views: a model
    reading a view (stg_bars_1m) reads what the view reads (bars_1m_l2), and its procedure
    must run after theirs.
-#}
{% macro _incremental_models_read(node_ids, seen=none) -%}
    {%- set seen = seen if seen is not none else [] -%}
    {%- set found = [] -%}
    {%- for node_id in node_ids if node_id.startswith('model.') and node_id not in seen -%}
        {%- do seen.append(node_id) -%}
        {%- set node = graph.nodes[node_id] -%}
        {%- if node.config.materialized == 'incremental' -%}
            {%- do found.append(node.name) -%}
        {%- else -%}
            {%- for name in _incremental_models_read(node.depends_on.nodes, seen) if name not in found -%}
                {%- do found.append(name) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}
