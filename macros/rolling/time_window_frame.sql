{#-
    Frame of the half-open time window (ts - W, ts], W in seconds. Postgres range frames are
    closed ([ts - W, ts]), so the offset is W less one microsecond, the timestamp resolution.
-#}
{% macro time_window_frame(seconds) -%}
    {%- if seconds is not number or seconds <= 0 -%}
        {{ exceptions.raise_compiler_error("time_window_frame: the window must be a positive number of seconds, got '" ~ seconds ~ "'") }}
    {%- endif -%}
    range between interval '{{ "%.6f" | format(seconds - 0.000001) }} seconds' preceding and current row
{%- endmacro %}
