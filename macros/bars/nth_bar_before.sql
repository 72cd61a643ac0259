{#-
    An expression: the open time of the n-th final one-minute bar (stg_bars_1m) of `symbol`
    before `before` (n >= 1), or '-infinity' when the symbol has fewer: where a window's
    warm-up reads from. A symbol without derived bars before `before` (bars loaded only, the
    common case): one backward index scan of its loaded bars. Otherwise the newest n of each
    kind (index scans backwards), merged (a minute with both is one bar), the last of them:
    the merge costs three times the scan (hash and sort), and through stg_bars_1m the union
    would sort all of the symbol's bars (11 ms a symbol).
-#}
{% macro nth_bar_before(symbol, before, n) -%}
    {%- if n is not number or n < 1 -%}
        {{ exceptions.raise_compiler_error("nth_bar_before: n must be a positive integer, got '" ~ n ~ "'") }}
    {%- endif -%}
    coalesce(case
        when not exists (
            select from {{ ref('bars_1m_l2') }} as derived
            where derived.symbol = {{ symbol }} and derived.ts < {{ before }}
        ) then (
            select loaded.ts from {{ source('market', 'bars_1m') }} as loaded
            where loaded.symbol = {{ symbol }} and loaded.ts < {{ before }}
            order by loaded.ts desc
            limit 1 offset {{ n - 1 }}
        )
        else (
            select earlier.ts
            from (
                (
                    select loaded.ts from {{ source('market', 'bars_1m') }} as loaded
                    where loaded.symbol = {{ symbol }} and loaded.ts < {{ before }}
                    order by loaded.ts desc
                    limit {{ n }}
                )
                union
                (
                    -- final ones only (stg_bars_1m's rule: a snapshot at or after the
                    -- minute's end)
                    select derived.ts from {{ ref('bars_1m_l2') }} as derived
                    where
                        derived.symbol = {{ symbol }}
                        and derived.ts < {{ before }}
                        and derived.ts + interval '1 minute' <= (
                            select max(snapshots.ts) from {{ source('market', 'l2_snapshots') }} as snapshots
                            where snapshots.symbol = {{ symbol }}
                        )
                    order by derived.ts desc
                    limit {{ n }}
                )
            ) as earlier
            order by earlier.ts desc
            limit 1 offset {{ n - 1 }}
        )
    end, '-infinity'::timestamptz)
{%- endmacro %}
