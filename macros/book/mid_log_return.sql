{#-
    Log return of the mid from the previous snapshot (section 0, T3): ln(m_t / m_{t-1})
    computed as ln(1 + (m_t - m_{t-1}) / m_{t-1}) (T17). NULL when either mid is NULL or
    on a symbol's first snapshot. `mid` and `prev_mid` are column names.
-#}
{% macro mid_log_return(mid='mid', prev_mid='prev_mid') -%}
    case
        when {{ prev_mid }} > 0 and {{ mid }} > 0
            then ln(1 + ({{ mid }} - {{ prev_mid }}) / {{ prev_mid }})
    end
{%- endmacro %}
