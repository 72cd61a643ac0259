{#- The bar family models (FEATURE_DEFINITIONS K1-K14) in the order bar_features lays them out:
    K1-K13 (models/bar), then K14's families across symbols and with heavy math
    (models/bar_k14). -#}
{% macro bar_family_models() -%}
    {{ return([
        'time_features', 'bollinger_rate', 'bollinger_bqx', 'statistics_rate', 'statistics_bqx',
        'technical_rate', 'technical_bqx', 'regression_rate', 'regression_bqx',
        'parabolic_comparison', 'fibonacci', 'realized_volatility', 'microstructure_bars',
        'lagged_features', 'volume_features', 'spread_features', 'multi_scale', 'market_regime',
        'correlation', 'cross_sectional', 'error_correction', 'hmm_regime_bars', 'spectral_bars',
        'volatility_surface',
    ]) }}
{%- endmacro %}


{#- The feature columns of a bar family model: its YAML columns, without the key and the state
    a model carries for its next refresh (`state_*`, not features). -#}
{% macro bar_feature_columns(model_name) -%}
    {%- set found = [] -%}
    {%- for column in documented_columns(model_name) if column.name not in ('symbol', 'ts') and not column.name.startswith('state_') -%}
        {%- do found.append(column) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}
