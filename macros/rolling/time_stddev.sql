{#-
    Sample standard deviation of x over (ts - W, ts], NULLs skipped, NULL under 2 values
    (T2), from x's running_moments columns (<name>_s1, _s2, _n) and x itself; the
    cancelling difference n*S2 - S1^2 is exact in numeric, the rest float8.
-#}
{% macro time_stddev(name, expr, seconds) -%}
    {%- set s1 = time_window_sum(name ~ '_s1', expr, seconds, exact=true) -%}
    {%- set s2 = time_window_sum(name ~ '_s2', '(' ~ expr ~ ')::numeric * (' ~ expr ~ ')::numeric', seconds, exact=true) -%}
    {%- set n = time_window_sum(name ~ '_n', 'case when (' ~ expr ~ ') is not null then 1 end', seconds) -%}
    case
        when {{ n }} >= 2 then sqrt(greatest(
            ({{ n }}::numeric * {{ s2 }} - {{ s1 }} * {{ s1 }})::double precision / ({{ n }} * ({{ n }} - 1)),
            0
        ))
    end
{%- endmacro %}
