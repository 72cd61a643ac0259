{#- The heavy-math family models (models/heavy), in the order heavy_features lays them out. -#}
{% macro heavy_family_models() -%}
    {{ return(['hht', 'hmm_regime', 'wavelet', 'spectral', 'garch']) }}
{%- endmacro %}
