-- PL/Python kernels whose code travels in SQL: `tickfeatures migrate` copies each module of
-- python_udfs/ into udf.python_modules (by checksum), so a remote server needs no files of
-- ours. A kernel function loads its module once per session, from that table, into GD.
create extension if not exists plpython3u;

create table udf.python_modules (
    name text primary key,
    source text not null,
    sha256 text not null,
    installed_at timestamptz not null default now()
);
comment on table udf.python_modules is
    'source of the python_udfs/ modules the udf.* PL/Python functions run; written by tickfeatures migrate';

-- Puts GD["tf_kernel"] in place: kernel(module, function, *args) imports module (tf_* names
-- are found in udf.python_modules by an import hook, so kernel modules import each other as
-- they do on disk), runs module.function(*args) and returns (result, None), or (None,
-- message) when the kernel raises tf_common.InputError. The PL/Python functions pass the
-- message on as data and their plpgsql wrappers raise it: an error raised in Python would
-- reach the client prefixed with the exception class and followed by a Python traceback.
create function udf._kernel_loader()
returns void
language plpython3u
as $$
import importlib
import importlib.abc
import importlib.util
import sys

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

if not any(isinstance(f, ModulesTable) or type(f).__name__ == "ModulesTable" for f in sys.meta_path):
    sys.meta_path.insert(0, ModulesTable())

def kernel(module, function, *args):
    try:
        common = importlib.import_module("tf_common")
        mod = importlib.import_module(module)
    except ImportError as exc:
        plpy.error("python module %s is not installed (%s); run `tickfeatures migrate`" % (module, exc))
    try:
        return getattr(mod, function)(*args), None
    except common.InputError as exc:
        return None, str(exc)

GD["tf_kernel"] = kernel
$$;

-- G4 -------------------------------------------------------------------------------------------
create function udf._wavedec(x double precision[], wavelet text, level int)
returns table (idx int, coeffs double precision[], error text)
language plpython3u
immutable
parallel safe
as $$
if "tf_kernel" not in GD:
    plpy.execute("select udf._kernel_loader()")
arrays, error = GD["tf_kernel"]("tf_wavelet", "wavedec", x, wavelet, level)
if error is not None:
    return [(None, None, error)]
return [(i, a.tolist(), None) for i, a in enumerate(arrays)]
$$;

create function udf.wavedec(x double precision[], wavelet text default 'db4', level int default null)
returns table (idx int, coeffs double precision[])
language plpgsql
immutable
parallel safe
as $$
declare
    part record;
begin
    if x is null then
        return;
    end if;
    for part in select * from udf._wavedec(x, wavelet, level) loop
        if part.error is not null then
            raise exception using errcode = 'invalid_parameter_value', message = 'udf.wavedec: ' || part.error;
        end if;
        idx := part.idx;
        coeffs := part.coeffs;
        return next;
    end loop;
end
$$;
comment on function udf.wavedec(double precision[], text, int) is
    'pywt.wavedec(x, wavelet, mode=''symmetric'', level): idx 0 is cA_J, then cD_J down to cD_1 (G4)';

-- G2 -------------------------------------------------------------------------------------------
create function udf._analytic_signal(x double precision[])
returns table (amplitude double precision[], phase double precision[], inst_freq double precision[], error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_kernel" not in GD:
    plpy.execute("select udf._kernel_loader()")
parts, error = GD["tf_kernel"]("tf_hilbert", "analytic_signal", x)
if error is not None:
    return [(None, None, None, error)]
return [tuple(a.tolist() for a in parts) + (None,)]
$$;

create function udf.analytic_signal(x double precision[])
returns table (amplitude double precision[], phase double precision[], inst_freq double precision[])
language plpgsql
immutable
strict
parallel safe
as $$
declare
    result record;
begin
    select * into result from udf._analytic_signal(x);
    if result.error is not null then
        raise exception using errcode = 'invalid_parameter_value', message = 'udf.analytic_signal: ' || result.error;
    end if;
    amplitude := result.amplitude;
    phase := result.phase;
    inst_freq := result.inst_freq;
    return next;
end
$$;
comment on function udf.analytic_signal(double precision[]) is
    'scipy.signal.hilbert(x): amplitude |z|, phase unwrap(angle z), inst_freq = diff(phase)/2pi with NaN first (G2)';

-- H --------------------------------------------------------------------------------------------
create function udf._johansen(y double precision[], det_order int, k_ar_diff int)
returns table (result jsonb, error text)
language plpython3u
immutable
strict
parallel safe
as $$
import json
if "tf_kernel" not in GD:
    plpy.execute("select udf._kernel_loader()")
result, error = GD["tf_kernel"]("tf_johansen", "johansen", y, det_order, k_ar_diff)
if error is not None:
    return [(None, error)]
return [(json.dumps(result), None)]
$$;

create function udf.johansen(y double precision[], det_order int, k_ar_diff int)
returns jsonb
language plpgsql
immutable
strict
parallel safe
as $$
declare
    outcome record;
begin
    select * into outcome from udf._johansen(y, det_order, k_ar_diff);
    if outcome.error is not null then
        raise exception using errcode = 'invalid_parameter_value', message = 'udf.johansen: ' || outcome.error;
    end if;
    return outcome.result;
end
$$;
comment on function udf.johansen(double precision[], int, int) is
    'statsmodels coint_johansen(y, det_order, k_ar_diff) on y (nobs x m): eig, lr1, lr2, evec (H2)';
