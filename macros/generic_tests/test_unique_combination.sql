{#- Key combinations that occur more than once. -#}
{% test unique_combination(model, columns) %}

with validation_errors as (
    select
        {{ columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
)

select * from validation_errors
{% endtest %}
