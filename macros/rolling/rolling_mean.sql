{#-
    Mean of a series over the row window (as rolling_stddev), from its running_moments
    columns: the window's exact sum converted to float8 and divided there (numeric division
    costs more than the conversion). exact=true divides in numeric first, so the mean is the
    correctly rounded one: for comparisons that must not flip on a last-bit difference.
-#}
{% macro rolling_mean(name, n, skip=0, exact=false) -%}
    {%- if native_windows() -%}
    udf.window_mean({{ name }}_x, {{ n }}, {{ skip }}, {{ 'true' if exact else 'false' }}) {{ _symbol_window() }}
    {%- else -%}
    case
        when {{ rows_window_full(name ~ '_n', n, skip=skip) }} then
        {%- if exact %}
            ({{ rows_window_sum(name ~ '_s1', n, exact=true, skip=skip) }} / {{ n }})::double precision
        {%- else %}
            {{ rows_window_sum(name ~ '_s1', n, skip=skip) }} / {{ n }}
        {%- endif %}
    end
    {%- endif -%}
{%- endmacro %}
