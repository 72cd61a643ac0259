-- Every heavy-math kernel of python_udfs/ as a SQL function in schema udf, in one pattern:
--
--   udf._<fn>(...)  PL/Python: runs tf_<module>.<fn>(...) through GD["tf_call"] and returns
--                   (value, error); error is the kernel's one-line tf_common.InputError message.
--   udf.<fn>(...)   SQL: returns value, or raises `udf.<fn>: <error>` (SQLSTATE 22023) through
--                   udf._fail. Raising from PL/Python would prefix the message with the Python
--                   exception class and attach a traceback.
--
-- The three kernels of 0008 move to the same pattern (same signatures, same behaviour).

-- GD["tf_call"](module, function, *args): as 0008's GD["tf_kernel"], and converts the result for
-- SQL: numpy arrays and scalars to lists and floats, a dict to JSON text for jsonb (non-finite
-- floats become null, which jsonb can hold), tuples and lists element by element.
create or replace function udf._kernel_loader()
returns void
language plpython3u
as $$
import importlib
import importlib.abc
import importlib.util
import json
import math
import sys

import numpy as np

query = plpy.prepare("select source from udf.python_modules where name = $1", ["text"])

class ModulesTable(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if not name.startswith("tf_") or not plpy.execute(query, [name]):
            return None
        return importlib.util.spec_from_loader(name, self, origin="udf.python_modules:" + name)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = plpy.execute(query, [module.__name__])[0]["source"]
        exec(compile(source, module.__spec__.origin, "exec"), module.__dict__)

if not any(type(f).__name__ == "ModulesTable" for f in sys.meta_path):
    sys.meta_path.insert(0, ModulesTable())

def plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value

def finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value

def call(module, function, *args):
    try:
        common = importlib.import_module("tf_common")
        mod = importlib.import_module(module)
    except ImportError as exc:
        plpy.error("python module %s is not installed (%s); run `tickfeatures migrate`" % (module, exc))
    try:
        result = plain(getattr(mod, function)(*args))
    except common.InputError as exc:
        return None, str(exc)
    if isinstance(result, dict):
        result = json.dumps(finite(result), allow_nan=False)
    return result, None

GD["tf_call"] = call
$$;

create function udf._fail(fn text, message text, model anyelement)
returns anyelement
language plpgsql
immutable
parallel safe
as $$
begin
    raise exception using errcode = 'invalid_parameter_value', message = fn || ': ' || message;
end
$$;
comment on function udf._fail(text, text, anyelement) is
    'raises "<fn>: <message>" (SQLSTATE 22023); typed like model so a SQL kernel wrapper can use it in an expression';

-- G4 (0008) ------------------------------------------------------------------------------------
create or replace function udf._wavedec(x double precision[], wavelet text, level int)
returns table (idx int, coeffs double precision[], error text)
language plpython3u
immutable
parallel safe
as $$
if x is None:
    return []
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
arrays, error = GD["tf_call"]("tf_wavelet", "wavedec", x, wavelet, level)
if error is not None:
    return [(None, None, error)]
return [(i, a, None) for i, a in enumerate(arrays)]
$$;

create or replace function udf.wavedec(
    x double precision[], wavelet text default 'db4', level int default null
)
returns table (idx int, coeffs double precision[])
language sql
immutable
parallel safe
begin atomic
    select k.idx, case when k.error is null then k.coeffs else udf._fail('udf.wavedec', k.error, k.coeffs) end
    from udf._wavedec(x, wavelet, level) as k;
end;

-- G2 (0008) ------------------------------------------------------------------------------------
create or replace function udf._analytic_signal(x double precision[])
returns table (amplitude double precision[], phase double precision[], inst_freq double precision[], error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
parts, error = GD["tf_call"]("tf_hilbert", "analytic_signal", x)
return [(None, None, None, error) if error is not None else (*parts, None)]
$$;

create or replace function udf.analytic_signal(x double precision[])
returns table (amplitude double precision[], phase double precision[], inst_freq double precision[])
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.amplitude else udf._fail('udf.analytic_signal', k.error, k.amplitude) end,
        k.phase,
        k.inst_freq
    from udf._analytic_signal(x) as k;
end;

-- H (0008) -------------------------------------------------------------------------------------
create or replace function udf._johansen(y double precision[], det_order int, k_ar_diff int)
returns table (result jsonb, error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return [GD["tf_call"]("tf_johansen", "johansen", y, det_order, k_ar_diff)]
$$;

create or replace function udf.johansen(y double precision[], det_order int, k_ar_diff int)
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.result else udf._fail('udf.johansen', k.error, k.result) end
    from udf._johansen(y, det_order, k_ar_diff) as k;
end;

-- G1 -------------------------------------------------------------------------------------------
create function udf._emd(x double precision[], max_imf int, out value double precision[], out error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_emd", "emd", x, max_imf)
$$;

create function udf.emd(x double precision[], max_imf int default -1)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.emd', k.error, k.value) end
    from udf._emd(x, max_imf) as k;
end;
comment on function udf.emd(double precision[], int) is
    'PyEMD EMD()(x, max_imf) with its defaults: a 2-D array, rows = IMFs (highest frequency first) then the residue (G1)';

-- G3 -------------------------------------------------------------------------------------------
create function udf._hmm_fit(
    x double precision[], n_states int, n_iter int, seed int, out value jsonb, out error text
)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_hmm", "hmm_fit", x, n_states, n_iter, seed)
$$;

create function udf.hmm_fit(
    x double precision[], n_states int default 3, n_iter int default 100, seed int default 0
)
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_fit', k.error, k.value) end
    from udf._hmm_fit(x, n_states, n_iter, seed) as k;
end;
comment on function udf.hmm_fit(double precision[], int, int, int) is
    'Gaussian HMM fitted by EM as hmmlearn GaussianHMM (diag), seeded, states by ascending mean: startprob, transmat, means, variances, loglik (G3)';

create function udf._hmm_posteriors(x double precision[], params jsonb, out value double precision[], out error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_hmm", "hmm_posteriors", x, params)
$$;

create function udf.hmm_posteriors(x double precision[], params jsonb)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_posteriors', k.error, k.value) end
    from udf._hmm_posteriors(x, params) as k;
end;
comment on function udf.hmm_posteriors(double precision[], jsonb) is
    'smoothed state probabilities (T x K), as hmmlearn predict_proba for these parameters (G3)';

create function udf._hmm_filtered(x double precision[], params jsonb, out value double precision[], out error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_hmm", "hmm_filtered", x, params)
$$;

create function udf.hmm_filtered(x double precision[], params jsonb)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_filtered', k.error, k.value) end
    from udf._hmm_filtered(x, params) as k;
end;
comment on function udf.hmm_filtered(double precision[], jsonb) is
    'causal state probabilities P(s_t | x_0..x_t) (T x K), the normalised forward pass (G3)';

create function udf._hmm_viterbi(x double precision[], params jsonb, out value int[], out error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_hmm", "hmm_viterbi", x, params)
$$;

create function udf.hmm_viterbi(x double precision[], params jsonb)
returns int[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_viterbi', k.error, k.value) end
    from udf._hmm_viterbi(x, params) as k;
end;
comment on function udf.hmm_viterbi(double precision[], jsonb) is
    'most likely state path, as hmmlearn decode(algorithm=''viterbi'') for these parameters (G3)';

-- C5 -------------------------------------------------------------------------------------------
create function udf._garch11_fit(r double precision[], out value jsonb, out error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_garch", "garch11_fit", r)
$$;

create function udf.garch11_fit(r double precision[])
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.garch11_fit', k.error, k.value) end
    from udf._garch11_fit(r) as k;
end;
comment on function udf.garch11_fit(double precision[]) is
    'GARCH(1,1) with constant mean fitted as arch_model(r).fit(): mu, omega, alpha, beta, loglik (C5); pass 100 x returns';

create function udf._garch11_variance(r double precision[], params jsonb, out value double precision[], out error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_garch", "garch11_variance", r, params)
$$;

create function udf.garch11_variance(r double precision[], params jsonb)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.garch11_variance', k.error, k.value) end
    from udf._garch11_variance(r, params) as k;
end;
comment on function udf.garch11_variance(double precision[], jsonb) is
    'conditional variance of r under GARCH(1,1) params, with arch''s backcast and variance bounds (C5)';

-- G5 -------------------------------------------------------------------------------------------
create function udf._ssa(x double precision[], "window" int, n_components int, out value double precision[], out error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_ssa", "ssa", x, window, n_components)
$$;

create function udf.ssa(x double precision[], "window" int, n_components int)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.ssa', k.error, k.value) end
    from udf._ssa(x, "window", n_components) as k;
end;
comment on function udf.ssa(double precision[], int, int) is
    'singular spectrum analysis: the reconstruction of each of the first n_components (components x N) (G5)';

-- G6 -------------------------------------------------------------------------------------------
create function udf._spectral_features(x double precision[], out value jsonb, out error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_spectral", "spectral_features", x)
$$;

create function udf.spectral_features(x double precision[])
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.spectral_features', k.error, k.value) end
    from udf._spectral_features(x) as k;
end;
comment on function udf.spectral_features(double precision[]) is
    'periodogram features of x demeaned: dominant_freq, dominant_period, band shares, spectral_entropy (G6)';
