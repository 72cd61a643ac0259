{#-
    The running sums rolling_stddev and rolling_mean need for a series, as columns
    <name>_s1, <name>_s2 and <name>_n: exact numeric sums of x and x^2, and a count of x.
    With the native window functions (native_windows), the series itself as <name>_x: they
    keep their exact sums themselves.
-#}
{% macro running_moments(expr, name) -%}
    {%- if native_windows() -%}
    ({{ expr }})::double precision as {{ name }}_x
    {%- else -%}
    {{ running_sum(expr) }} as {{ name }}_s1,
    {{ running_sum(_squared(expr)) }} as {{ name }}_s2,
    {{ running_count(expr) }} as {{ name }}_n
    {%- endif -%}
{%- endmacro %}

{#-
    The running_moments columns' values just before each row, as <name>_s1_before, _s2_before
    and _n_before, for time windows (time_stddev). In a CTE after the running_moments. With
    the native window functions: the series again, as <name>_x_before (nothing reads it).
-#}
{% macro running_moments_before(expr, name) -%}
    {%- if native_windows() -%}
    {{ name }}_x as {{ name }}_x_before
    {%- else -%}
    {{ running_sum_before(name ~ '_s1', expr) }} as {{ name }}_s1_before,
    {{ running_sum_before(name ~ '_s2', _squared(expr)) }} as {{ name }}_s2_before,
    {{ running_count_before(name ~ '_n', expr) }} as {{ name }}_n_before
    {%- endif -%}
{%- endmacro %}

{#- x^2 as the moments sum it: the exact product of x as numeric. -#}
{% macro _squared(expr) -%}
    ({{ expr }})::numeric * ({{ expr }})::numeric
{%- endmacro %}
