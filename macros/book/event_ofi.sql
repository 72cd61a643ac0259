{#-
    Order flow imbalance between the previous snapshot and this one at one book level
    (B1, Cont-Kukanov-Stoikov), from columns <side>_<price|size>_<level> and their prev_*
    copies (previous_level):
      e = 1{b >= b'}·B - 1{b <= b'}·B' - 1{a <= a'}·A + 1{a >= a'}·A'.
    empty_levels=false: NULL when any price or size of either snapshot is NULL (T7, e_n).
    empty_levels=true: the multi-level convention of B4 (T7): an empty level (NULL price
    or size) has size 0 and price -inf (bid) or +inf (ask), so a level that appears counts
    +size, one that vanishes -(previous size), and one empty in both snapshots 0.
-#}
{% macro event_ofi(level=1, empty_levels=false) -%}
    {%- set k = _book_levels(level) -%}
    {%- if empty_levels -%}
        {%- set b = "coalesce(case when bid_size_" ~ k ~ " is not null then bid_price_" ~ k ~ " end, '-infinity'::double precision)" -%}
        {%- set b0 = "coalesce(case when prev_bid_size_" ~ k ~ " is not null then prev_bid_price_" ~ k ~ " end, '-infinity'::double precision)" -%}
        {%- set a = "coalesce(case when ask_size_" ~ k ~ " is not null then ask_price_" ~ k ~ " end, 'infinity'::double precision)" -%}
        {%- set a0 = "coalesce(case when prev_ask_size_" ~ k ~ " is not null then prev_ask_price_" ~ k ~ " end, 'infinity'::double precision)" -%}
        {%- set bq = level_size('bid', k) -%}
        {%- set aq = level_size('ask', k) -%}
        {%- set bq0 = "case when prev_bid_price_" ~ k ~ " is null then 0 else coalesce(prev_bid_size_" ~ k ~ ", 0) end" -%}
        {%- set aq0 = "case when prev_ask_price_" ~ k ~ " is null then 0 else coalesce(prev_ask_size_" ~ k ~ ", 0) end" -%}
    {%- else -%}
        {%- set b, b0, a, a0 = "bid_price_" ~ k, "prev_bid_price_" ~ k, "ask_price_" ~ k, "prev_ask_price_" ~ k -%}
        {%- set bq, bq0, aq, aq0 = "bid_size_" ~ k, "prev_bid_size_" ~ k, "ask_size_" ~ k, "prev_ask_size_" ~ k -%}
    {%- endif -%}
    case
        {%- if empty_levels %}
        when prev_ts is null then null
        {%- else %}
        when {{ [b, b0, a, a0, bq, bq0, aq, aq0] | join(' is null or ') }} is null then null
        {%- endif %}
        else
            -- the case table of B1: e = dW - dV
            case
                when {{ b }} > {{ b0 }} then {{ bq }}
                when {{ b }} = {{ b0 }} then {{ bq }} - {{ bq0 }}
                else -{{ bq0 }}
            end
            - case
                when {{ a }} < {{ a0 }} then {{ aq }}
                when {{ a }} = {{ a0 }} then {{ aq }} - {{ aq0 }}
                else -{{ aq0 }}
            end
    end
{%- endmacro %}
