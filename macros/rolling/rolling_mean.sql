{#- Mean of a series over the row window (as rolling_stddev), from its running_moments columns. -#}
{% macro rolling_mean(name, n, skip=0) -%}
    case
        when {{ rows_window_full(name ~ '_n', n, skip=skip) }}
            then ({{ rows_window_sum(name ~ '_s1', n, exact=true, skip=skip) }} / {{ n }})::double precision
    end
{%- endmacro %}
