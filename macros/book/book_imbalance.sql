{#- Order book imbalance over k levels, OBI_k = (D^b_k - D^a_k) / (D^b_k + D^a_k) (A6). -#}
{% macro book_imbalance(k=1, relation=none) -%}
    {{ safe_divide(
        book_depth('bid', k, relation) ~ ' - ' ~ book_depth('ask', k, relation),
        book_depth('bid', k, relation) ~ ' + ' ~ book_depth('ask', k, relation)
    ) }}
{%- endmacro %}
