{#-
    The start of a `with` clause for an incremental bar model: CTEs `bounds` and `scope`
    giving, per symbol with writes the model has not processed (refresh_begin), `from_ts`,
    the first bucket to recompute: the earlier of the model's latest stored bucket (it may
    have been unfinished) and the bucket holding the time `back` before the earliest write;
    '-infinity' for a symbol with nothing stored yet. The caller goes on with `, ...` or a
    select from `scope`.
-#}
{% macro bucket_scope(bucket, back=none) -%}
    with bounds as materialized (
        select
            pending.symbol,
            pending.min_ts,
            (select max(done.ts) from {{ this }} as done where done.symbol = pending.symbol)
                as latest_bucket
        from {{ _pending_relation(this) }} as pending
    ),

    scope as materialized (
        select
            bounds.symbol,
            case
                when bounds.latest_bucket is null then '-infinity'::timestamptz
                else least(
                    time_bucket({{ bucket }}, bounds.min_ts{% if back %} - {{ back }}{% endif %}),
                    bounds.latest_bucket
                )
            end as from_ts
        from bounds
    )
{%- endmacro %}
