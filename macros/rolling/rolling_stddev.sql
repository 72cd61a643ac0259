{#-
    Sample standard deviation (ddof=1) of a series over the row window t-n+1..t (skip=k:
    t-k-n+1..t-k), NULL unless all n values are non-NULL (T1), from its running_moments
    columns <name>_s1, _s2, _n: sqrt((n*S2 - S1^2) / (n(n-1))). The difference, where the
    digits cancel, is exact in numeric; the division and root run in float8 (numeric's are
    slow). Windows of one series share the running sums and cost two lags each: O(rows),
    where a moving stddev() frame is a full aggregate per window (and in float8 O(rows x n)).
-#}
{% macro rolling_stddev(name, n, skip=0) -%}
    {%- if n is not number or n < 2 -%}
        {{ exceptions.raise_compiler_error("rolling_stddev: n must be an integer >= 2, got '" ~ n ~ "'") }}
    {%- endif -%}
    {%- if native_windows() -%}
    udf.window_std({{ name }}_x, {{ n }}, {{ skip }}) {{ _symbol_window() }}
    {%- else -%}
    {%- set s1 = rows_window_sum(name ~ '_s1', n, exact=true, skip=skip) -%}
    case
        when {{ rows_window_full(name ~ '_n', n, skip=skip) }} then sqrt(greatest(
            ({{ n }} * {{ rows_window_sum(name ~ '_s2', n, exact=true, skip=skip) }} - {{ s1 }} * {{ s1 }})::double precision
            / {{ n * (n - 1) }},
            0
        ))
    end
    {%- endif -%}
{%- endmacro %}
