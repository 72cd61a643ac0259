{#- Sample standard deviation over (ts - W, ts], NULLs skipped, NULL under 2 values (T2). -#}
{% macro time_stddev(expr, seconds) -%}
    stddev_samp(({{ expr }})::numeric) {{ _symbol_window(time_window_frame(seconds)) }}::double precision
{%- endmacro %}
