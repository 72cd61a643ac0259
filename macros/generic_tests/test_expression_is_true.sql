{#- Rows for which a boolean expression is false (NULL counts as true: nothing to check). -#}
{% test expression_is_true(model, expression) %}

with validation_errors as (
    select *
    from {{ model }}
    where not coalesce({{ expression }}, true)
)

select * from validation_errors
{% endtest %}
