{#-
    Sum over the row window t-n+1..t from a running_sum column: float8, or exact numeric.
    skip=k ends the window k rows earlier (t-k-n+1..t-k), e.g. skip=1 for "the n rows before".
-#}
{% macro rows_window_sum(running, n, exact=false, skip=0) -%}
    {%- if n is not number or n < 1 -%}
        {{ exceptions.raise_compiler_error("rows_window_sum: n must be a positive integer, got '" ~ n ~ "'") }}
    {%- endif -%}
    {%- set latest = running if skip == 0 else 'lag(' ~ running ~ ', ' ~ skip ~ ', 0::numeric) ' ~ _symbol_window() -%}
    ({{ latest }} - lag({{ running }}, {{ n + skip }}, 0::numeric) {{ _symbol_window() }}){{ '' if exact else '::double precision' }}
{%- endmacro %}
