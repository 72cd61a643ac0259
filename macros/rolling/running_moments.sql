{#-
    The running sums rolling_stddev and rolling_mean need for a series, as columns
    <name>_s1, <name>_s2 and <name>_n: exact numeric sums of x and x^2, and a count of x.
-#}
{% macro running_moments(expr, name) -%}
    {{ running_sum(expr) }} as {{ name }}_s1,
    {{ running_sum('(' ~ expr ~ ')::numeric * (' ~ expr ~ ')::numeric') }} as {{ name }}_s2,
    {{ running_count(expr) }} as {{ name }}_n
{%- endmacro %}
