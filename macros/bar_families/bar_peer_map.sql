{#- Every symbol with one-minute bars, loaded or derived from snapshots (skip scans). -#}
{% macro bar_symbols() -%}
    with recursive loaded_symbols as (
        {{ distinct_symbols(source('market', 'bars_1m'), 'loaded_symbols') }}
    ),

    derived_symbols as (
        {{ distinct_symbols(ref('bars_1m_l2'), 'derived_symbols') }}
    )

    select loaded_symbols.symbol from loaded_symbols where loaded_symbols.symbol is not null
    union
    select derived_symbols.symbol from derived_symbols where derived_symbols.symbol is not null
{%- endmacro %}


{#- The reference symbols (dbt var reference_symbols, FEATURE_DEFINITIONS K14): a list of
    symbol names, or one comma-separated string (as `--vars` gives it on a command line). -#}
{% macro reference_symbols() -%}
    {%- set value = var('reference_symbols', ['EURUSD', 'GBPUSD', 'USDJPY']) -%}
    {%- if value is string -%}
        {%- set value = value.split(',') -%}
    {%- endif -%}
    {%- set found = [] -%}
    {%- for name in value -%}
        {%- if name is not string or not name.strip() -%}
            {{ exceptions.raise_compiler_error("dbt var reference_symbols must list symbol names, got '" ~ name ~ "'") }}
        {%- endif -%}
        {%- do found.append(name.strip()) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}


{#-
    The peers of every symbol of `universe` (a relation or CTE with a `symbol` column): rows
    (symbol, slot, peer), slot the position in `slots` of:
      ref<j>      the j-th reference symbol (reference_symbols), unless it is the symbol itself;
      base_same   the other symbols whose base currency is the symbol's base currency;
      base_flip   the other symbols whose quote currency is the symbol's base currency;
      quote_same  the other symbols whose quote currency is the symbol's quote currency;
      quote_flip  the other symbols whose base currency is the symbol's quote currency;
    currencies from the `symbols` seed (base_ccy, quote_ccy). Only symbols of the universe are
    peers: a slot no loaded symbol fills has no row, and the kernel gives its columns NULL.
-#}
{% macro bar_peer_map(slots, universe) -%}
    {%- set references = reference_symbols() -%}
    {%- for slot in slots %}
    {%- if slot.startswith('ref') and slot[3:] | int > 0 %}
        {%- set j = slot[3:] | int %}
        {%- if j <= references | length %}
            {%- set condition = "peer.symbol = '" ~ references[j - 1] | replace("'", "''") ~ "'" %}
        {%- else %}
            {%- set condition = "false" %}
        {%- endif %}
    {%- elif slot == 'base_same' %}
        {%- set condition = "peer_reference.base_ccy = own_reference.base_ccy" %}
    {%- elif slot == 'base_flip' %}
        {%- set condition = "peer_reference.quote_ccy = own_reference.base_ccy" %}
    {%- elif slot == 'quote_same' %}
        {%- set condition = "peer_reference.quote_ccy = own_reference.quote_ccy" %}
    {%- elif slot == 'quote_flip' %}
        {%- set condition = "peer_reference.base_ccy = own_reference.quote_ccy" %}
    {%- else %}
        {{ exceptions.raise_compiler_error("bar_peer_map: unknown peer slot '" ~ slot ~ "'") }}
    {%- endif %}
    select
        own.symbol,
        {{ loop.index0 }} as slot,
        peer.symbol as peer
    from {{ universe }} as own
    cross join {{ universe }} as peer
    left join {{ ref('symbols') }} as own_reference on own.symbol = own_reference.symbol
    left join {{ ref('symbols') }} as peer_reference on peer.symbol = peer_reference.symbol
    where peer.symbol <> own.symbol and {{ condition }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
