{#- Mean over the row window t-n+1..t, NULL unless all n values are non-NULL (T1); numeric, exact. -#}
{% macro rolling_mean(expr, n) -%}
    case
        when count({{ expr }}) {{ _symbol_window('rows between ' ~ (n - 1) ~ ' preceding and current row') }} = {{ n }}
            then avg(({{ expr }})::numeric) {{ _symbol_window('rows between ' ~ (n - 1) ~ ' preceding and current row') }}::double precision
    end
{%- endmacro %}
