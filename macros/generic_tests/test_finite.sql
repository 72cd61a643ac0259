{#- Rows where a float column holds NaN or an infinity (section T17: only NULL means no value). -#}
{% test finite(model, column_name) %}

with validation_errors as (
    select *
    from {{ model }}
    where {{ column_name }} in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)
)

select * from validation_errors
{% endtest %}
