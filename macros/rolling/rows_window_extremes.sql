{#-
    CTEs giving the max and min of a column over the row windows t-n+1..t for each n in
    windows, NULLs ignored as max()/min() do: columns <name>_max_<n> and <name>_min_<n> of a
    final CTE <name>_extremes, which also carries every column of `source`.

    A max() frame has no inverse transition, so PostgreSQL re-aggregates the whole frame on
    every row: O(rows x n), 5 s for one 100-row max on 1M rows. Here spans double instead
    (a sparse table): <name>_max_2s(t) = greatest(max_s(t), max_s(t-s)), one lag per level,
    and a window of n rows joins two overlapping spans of the largest power of two s <= n:
    greatest(max_s(t), max_s(t-(n-s))). O(rows x log n). Exact, like max(). Put it on a
    narrow CTE: each level passes every carried column through one more window node.
    Usage:  with ..., {{ rows_window_extremes('mids', 'mid', [50, 100]) }}, next as (...)
-#}
{% macro rows_window_extremes(source, column, windows, name=none) -%}
    {%- set name = name or column -%}
    {%- for n in windows -%}
        {%- if n is not number or n < 2 -%}
            {{ exceptions.raise_compiler_error("rows_window_extremes: windows must be integers >= 2, got '" ~ n ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {%- set spans = [] -%}
    {%- set s = namespace(value=2) -%}
    {%- for _ in range(40) if s.value <= windows | max -%}
        {%- do spans.append(s.value) -%}
        {%- set s.value = s.value * 2 -%}
    {%- endfor -%}
    {%- set previous = namespace(cte=source) -%}
    {%- for span in spans %}
{{ name }}_span_{{ span }} as (
    select
        {{ previous.cte }}.*,
        {%- for op, fn in [('max', 'greatest'), ('min', 'least')] %}
        {%- set half = column if span == 2 else name ~ '_' ~ op ~ '_' ~ (span // 2) %}
        {{ fn }}({{ half }}, lag({{ half }}, {{ span // 2 }}) {{ _symbol_window() }}) as {{ name }}_{{ op }}_{{ span }}{{ ',' if op == 'max' }}
        {%- endfor %}
    from {{ previous.cte }}
),
    {%- set previous.cte = name ~ '_span_' ~ span -%}
    {%- endfor %}

{{ name }}_extremes as (
    select
        {{ previous.cte }}.*
        {%- for n in windows | unique if n not in spans -%}
        {%- set s = spans | select('le', n) | max -%}
        {%- for op, fn in [('max', 'greatest'), ('min', 'least')] %},
        {{ fn }}({{ name }}_{{ op }}_{{ s }}, lag({{ name }}_{{ op }}_{{ s }}, {{ n - s }}) {{ _symbol_window() }}) as {{ name }}_{{ op }}_{{ n }}
        {%- endfor -%}
        {%- endfor %}
    from {{ previous.cte }}
)
{%- endmacro %}
