-- Kernels that can be stopped, and inputs of bounded size (issue 12, items 4 and 5).
--
-- 1. GD["tf_call"] installs tf_common's checkpoint: PL/Python never checks for interrupts while
--    Python code runs, but every SPI query does, so the kernels call tf_common.checkpoint() in
--    their long loops and in the database it runs a prepared `select 1` at most every 50 ms. A
--    pending statement_timeout or pg_cancel_backend then ends the call with SQLSTATE 57014
--    (query_canceled), pg_terminate_backend ends the backend alone (FATAL 57P01); the server
--    keeps running either way.
-- 2. Every SQL wrapper rejects an array longer than its kernel's MAX_LENGTH (python_udfs/tf_*.py)
--    before PL/Python converts it to a Python list: the kernel would reject it too, with the
--    same message, but only after a conversion whose time and memory grow with the array.
--    The numbers here must equal the modules' (tests/kernels/test_limits.py checks both).
-- Signatures and results of the kernels are unchanged.

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
import time

import numpy as np

query = plpy.prepare("select source from udf.python_modules where name = $1", ["text"])
ping = plpy.prepare("select 1")
CHECK_INTERVAL = 0.05  # seconds between two interrupt checks of one call, at most
next_check = [0.0]

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

def checkpoint(clock=time.monotonic):
    # an SPI query runs CHECK_FOR_INTERRUPTS: a pending cancel or timeout raises
    # spiexceptions.QueryCanceled here, which no kernel catches; a terminate ends the backend
    if clock() >= next_check[0]:
        plpy.execute(ping)
        next_check[0] = clock() + CHECK_INTERVAL

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
    common.set_checkpoint(checkpoint)
    next_check[0] = time.monotonic() + CHECK_INTERVAL
    try:
        result = plain(getattr(mod, function)(*args))
    except common.InputError as exc:
        return None, str(exc)
    if isinstance(result, dict):
        result = json.dumps(finite(result), allow_nan=False)
    return result, None

GD["tf_call"] = call
$$;

-- x itself, or `<fn>: <name> is too long: <n> values, the maximum is <maximum>` (SQLSTATE
-- 22023), as the kernel's own check words it. An array of more than one dimension that is
-- too long gets the kernel's message for it, `<name> must be one-dimensional`.
create function udf._bounded(fn text, name text, x anyarray, maximum int)
returns anyarray
language sql
immutable
parallel safe
as $$
    select case
        when x is null or cardinality(x) <= maximum then x
        when array_ndims(x) > 1 then udf._fail(fn, name || ' must be one-dimensional', x)
        else udf._fail(
            fn, format('%s is too long: %s values, the maximum is %s', name, cardinality(x), maximum), x
        )
    end
$$;
comment on function udf._bounded(text, text, anyarray, int) is
    'x, or the error "<fn>: <name> is too long: ..." when x has more than maximum elements (a kernel''s MAX_LENGTH)';

-- The same for an nobs x m panel (tf_johansen's MAX_ROWS and MAX_SERIES).
create function udf._bounded_panel(fn text, name text, y anyarray, max_rows int, max_series int)
returns anyarray
language sql
immutable
parallel safe
as $$
    select case
        when array_ndims(y) = 2 and array_length(y, 1) > max_rows then udf._fail(
            fn, format('%s is too long: %s rows, the maximum is %s', name, array_length(y, 1), max_rows), y
        )
        when array_ndims(y) = 2 and array_length(y, 2) > max_series then udf._fail(
            fn, format('%s has %s series, the maximum is %s', name, array_length(y, 2), max_series), y
        )
        when array_ndims(y) <> 2 and cardinality(y) > max_rows * max_series then udf._fail(
            fn, name || ' must be two-dimensional (nobs x m)', y
        )
        else y
    end
$$;
comment on function udf._bounded_panel(text, text, anyarray, int, int) is
    'y, or the error "<fn>: <name> is too long: ..." when y has more than max_rows rows or max_series columns';

-- G4: tf_wavelet.MAX_LENGTH ------------------------------------------------------------------
create or replace function udf.wavedec(
    x double precision[], wavelet text default 'db4', level int default null
)
returns table (idx int, coeffs double precision[])
language sql
immutable
parallel safe
begin atomic
    select k.idx, case when k.error is null then k.coeffs else udf._fail('udf.wavedec', k.error, k.coeffs) end
    from udf._wavedec(udf._bounded('udf.wavedec', 'x', x, 262144), wavelet, level) as k;
end;

-- G2: tf_hilbert.MAX_LENGTH ------------------------------------------------------------------
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
    from udf._analytic_signal(udf._bounded('udf.analytic_signal', 'x', x, 131072)) as k;
end;

-- H2: tf_johansen.MAX_ROWS, MAX_SERIES -------------------------------------------------------
create or replace function udf.johansen(y double precision[], det_order int, k_ar_diff int)
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.result else udf._fail('udf.johansen', k.error, k.result) end
    from udf._johansen(udf._bounded_panel('udf.johansen', 'y', y, 20000, 12), det_order, k_ar_diff) as k;
end;

-- G1: tf_emd.MAX_LENGTH ----------------------------------------------------------------------
create or replace function udf.emd(x double precision[], max_imf int default -1)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.emd', k.error, k.value) end
    from udf._emd(udf._bounded('udf.emd', 'x', x, 16384), max_imf) as k;
end;

-- G3: tf_hmm.MAX_LENGTH ----------------------------------------------------------------------
create or replace function udf.hmm_fit(
    x double precision[], n_states int default 3, n_iter int default 100, seed int default 0
)
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_fit', k.error, k.value) end
    from udf._hmm_fit(udf._bounded('udf.hmm_fit', 'x', x, 20000), n_states, n_iter, seed) as k;
end;

create or replace function udf.hmm_posteriors(x double precision[], params jsonb)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_posteriors', k.error, k.value) end
    from udf._hmm_posteriors(udf._bounded('udf.hmm_posteriors', 'x', x, 20000), params) as k;
end;

create or replace function udf.hmm_filtered(x double precision[], params jsonb)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_filtered', k.error, k.value) end
    from udf._hmm_filtered(udf._bounded('udf.hmm_filtered', 'x', x, 20000), params) as k;
end;

create or replace function udf.hmm_viterbi(x double precision[], params jsonb)
returns int[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_viterbi', k.error, k.value) end
    from udf._hmm_viterbi(udf._bounded('udf.hmm_viterbi', 'x', x, 20000), params) as k;
end;

-- C5: tf_garch.MAX_LENGTH --------------------------------------------------------------------
create or replace function udf.garch11_fit(r double precision[])
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.garch11_fit', k.error, k.value) end
    from udf._garch11_fit(udf._bounded('udf.garch11_fit', 'r', r, 131072)) as k;
end;

create or replace function udf.garch11_variance(r double precision[], params jsonb)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.garch11_variance', k.error, k.value) end
    from udf._garch11_variance(udf._bounded('udf.garch11_variance', 'r', r, 131072), params) as k;
end;

create or replace function udf.garch11_loglik(r double precision[], params jsonb)
returns double precision
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.garch11_loglik', k.error, k.value) end
    from udf._garch11_loglik(udf._bounded('udf.garch11_loglik', 'r', r, 131072), params) as k;
end;

-- G5: tf_ssa.MAX_LENGTH ----------------------------------------------------------------------
create or replace function udf.ssa(x double precision[], "window" int, n_components int)
returns double precision[]
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.ssa', k.error, k.value) end
    from udf._ssa(udf._bounded('udf.ssa', 'x', x, 8192), "window", n_components) as k;
end;

-- G6: tf_spectral.MAX_LENGTH -----------------------------------------------------------------
create or replace function udf.spectral_features(x double precision[])
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.spectral_features', k.error, k.value) end
    from udf._spectral_features(udf._bounded('udf.spectral_features', 'x', x, 262144)) as k;
end;

-- families (0010): tf_families.HHT_MAX_BARS, HMM_MAX_BARS --------------------------------------
create or replace function udf.hht_features(closes double precision[], span_seconds double precision)
returns jsonb
language sql
volatile
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hht_features', k.error, k.value) end
    from udf._hht_features(udf._bounded('udf.hht_features', 'closes', closes, 16384), span_seconds) as k;
end;

create or replace function udf.hmm_regime_features(
    closes double precision[], n_states int default 3, n_iter int default 10, seed int default 0
)
returns jsonb
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.hmm_regime_features', k.error, k.value) end
    from udf._hmm_regime_features(
        udf._bounded('udf.hmm_regime_features', 'closes', closes, 20000), n_states, n_iter, seed
    ) as k;
end;
