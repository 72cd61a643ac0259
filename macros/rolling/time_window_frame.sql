{#-
    Frame of the half-open time window (ts - W, ts]. Postgres range frames are closed
    ([ts - W, ts]), so the offset is W less one microsecond, the timestamp resolution.
-#}
{% macro time_window_frame(interval) -%}
    range between interval '{{ interval }}' - interval '1 microsecond' preceding and current row
{%- endmacro %}
