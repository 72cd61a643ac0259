{#- The L2 feature family models in the order l2_features lays them out. -#}
{% macro l2_family_models() -%}
    {{ return(['microstructure', 'ofi', 'book_pressure', 'stability', 'volatility', 'flow', 'temporal', 'regime']) }}
{%- endmacro %}
