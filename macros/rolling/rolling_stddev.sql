{#-
    Sample standard deviation (ddof=1) over the row window t-n+1..t, NULL unless all n values
    are non-NULL (T1). Computed in numeric: its moving aggregate has an inverse transition
    (O(rows)) and is exact, where float8's is O(rows x window) and cancels badly.
-#}
{% macro rolling_stddev(expr, n) -%}
    {%- if n is not number or n < 2 -%}
        {{ exceptions.raise_compiler_error("rolling_stddev: n must be an integer >= 2, got '" ~ n ~ "'") }}
    {%- endif -%}
    case
        when count({{ expr }}) {{ _symbol_window('rows between ' ~ (n - 1) ~ ' preceding and current row') }} = {{ n }}
            then stddev_samp(({{ expr }})::numeric) {{ _symbol_window('rows between ' ~ (n - 1) ~ ' preceding and current row') }}::double precision
    end
{%- endmacro %}
