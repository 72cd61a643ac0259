{#-
    The running sums rolling_stddev and rolling_mean need for a series, as columns
    <name>_s1, <name>_s2 and <name>_n: exact numeric sums of x and x^2, and a count of x.
-#}
{% macro running_moments(expr, name) -%}
    {{ running_sum(expr) }} as {{ name }}_s1,
    {{ running_sum(_squared(expr)) }} as {{ name }}_s2,
    {{ running_count(expr) }} as {{ name }}_n
{%- endmacro %}

{#-
    The running_moments columns' values just before each row, as <name>_s1_before, _s2_before
    and _n_before, for time windows (time_stddev). In a CTE after the running_moments.
-#}
{% macro running_moments_before(expr, name) -%}
    {{ running_sum_before(name ~ '_s1', expr) }} as {{ name }}_s1_before,
    {{ running_sum_before(name ~ '_s2', _squared(expr)) }} as {{ name }}_s2_before,
    {{ running_count_before(name ~ '_n', expr) }} as {{ name }}_n_before
{%- endmacro %}

{#- x^2 as the moments sum it: the exact product of x as numeric. -#}
{% macro _squared(expr) -%}
    ({{ expr }})::numeric * ({{ expr }})::numeric
{%- endmacro %}
