{#-
    A running_sum column's value just before this row: the running sum less this row's term,
    exact. Time windows (time_window_sum) read it at their first row; as a column computed
    once per row it spares every window frame re-evaluating the term there.
-#}
{% macro running_sum_before(running, term) -%}
    ({{ running }} - coalesce(({{ term }})::numeric, 0))
{%- endmacro %}
