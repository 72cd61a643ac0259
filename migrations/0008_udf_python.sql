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

-- Puts GD["tf_kernel"] in place: kernel(module, function, *args) runs module.function(*args)
-- and returns (result, None), or (None, message) when the module raises its InputError (a
-- ValueError). The PL/Python functions pass the message on as data and their plpgsql
-- wrappers raise it: an error raised in Python would reach the client prefixed with the
-- exception class and followed by a Python traceback.
create function udf._kernel_loader()
returns void
language plpython3u
as $$
import types

def load(name):
    key = ("tf_module", name)
    module = GD.get(key)
    if module is None:
        rows = plpy.execute(plpy.prepare(
            "select source from udf.python_modules where name = $1", ["text"]), [name])
        if not rows:
            plpy.error("python module %s is not installed; run `tickfeatures migrate`" % name)
        module = types.ModuleType(name)
        module.__file__ = "udf.python_modules:" + name
        exec(compile(rows[0]["source"], module.__file__, "exec"), module.__dict__)
        GD[key] = module
    return module

def kernel(module, function, *args):
    mod = load(module)
    try:
        return getattr(mod, function)(*args), None
    except mod.InputError as exc:
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
