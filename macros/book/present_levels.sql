{#-
    Number of levels (both sides, 1..10) with a price and a size > 0; with whole_sizes=true,
    only those whose size is a whole number (|size - round(size)| <= 1e-9).
-#}
{% macro present_levels(whole_sizes=false) -%}
    (
    {%- for side in ['bid', 'ask'] %}{% for i in range(1, 11) %}
        {{ '+ ' if not (loop.first and side == 'bid') }}(
            {{ side }}_price_{{ i }} is not null and coalesce({{ side }}_size_{{ i }}, 0) > 0
            {%- if whole_sizes %} and abs({{ side }}_size_{{ i }} - round({{ side }}_size_{{ i }})) <= 1e-9{% endif %}
        )::int
    {%- endfor %}{% endfor %}
    )::double precision
{%- endmacro %}
