{#-
    Sample standard deviation of x over (ts - W, ts], NULLs skipped, NULL under 2 values
    (T2), from x's running_moments columns (<name>_s1, _s2, _n) and their running_moments_before
    columns; the cancelling difference n*S2 - S1^2 is exact in numeric, the rest float8.
-#}
{% macro time_stddev(name, seconds) -%}
    {%- if native_windows() -%}
    udf.time_window_std({{ name }}_x, ts, {{ seconds }}) {{ _symbol_window() }}
    {%- else -%}
    {%- set s1 = time_window_sum(name ~ '_s1', seconds, exact=true) -%}
    {%- set s2 = time_window_sum(name ~ '_s2', seconds, exact=true) -%}
    {%- set n = time_window_sum(name ~ '_n', seconds, exact=true) -%}
    case
        when {{ n }} >= 2 then sqrt(greatest(
            ({{ n }} * {{ s2 }} - {{ s1 }} * {{ s1 }})::double precision / ({{ n }} * ({{ n }} - 1)),
            0
        ))
    end
    {%- endif -%}
{%- endmacro %}
