-- Window features of the heavy families that combine kernels, in the pattern of 0009:
-- python_udfs/tf_families.py, one call per trailing window of 1-second mid closes.

create function udf._hht_features(closes double precision[], span_seconds double precision, out value jsonb, out error text)
language plpython3u
volatile  -- calculation_time_ms is measured, so the same input need not give the same value
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_families", "hht_features", closes, span_seconds)
$$;

create function udf.hht_features(closes double precision[], span_seconds double precision)
returns jsonb
language sql
volatile
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hht_features', k.error, k.value) end
    from udf._hht_features(closes, span_seconds) as k;
end;
comment on function udf.hht_features(double precision[], double precision) is
    'the hht family''s columns for one window of closes (oldest first) covering span_seconds: EMD (G1) of 1e4 ln(m/m_0), Hilbert spectrum of the dominant IMF (G2)';

create function udf._hmm_regime_features(
    closes double precision[], n_states int, n_iter int, seed int, out value jsonb, out error text
)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_families", "hmm_regime_features", closes, n_states, n_iter, seed)
$$;

create function udf.hmm_regime_features(
    closes double precision[], n_states int default 3, n_iter int default 10, seed int default 0
)
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_regime_features', k.error, k.value) end
    from udf._hmm_regime_features(closes, n_states, n_iter, seed) as k;
end;
comment on function udf.hmm_regime_features(double precision[], int, int, int) is
    'the hmm_regime family''s columns for one window of closes: Gaussian HMM (G3) of its 1-second log returns in bp; state, filtered probabilities and duration at the last bar';
