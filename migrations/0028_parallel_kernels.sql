-- Kernels in parallel query (PostgreSQL 15).
--
-- In a parallel query (in its workers, and in the leader while it runs) PostgreSQL 15 refuses
-- subtransactions, and PL/Python opens one for every plpy.execute: the kernel loader's module
-- lookups and tf_common's interrupt checkpoint (0016). A kernel marked PARALLEL SAFE that a
-- user's query ran in parallel failed with "cannot start subtransactions during a parallel
-- operation". So:
--
-- 1. Every PL/Python kernel, and every SQL wrapper that calls one, is PARALLEL UNSAFE: the
--    planner keeps queries calling them serial, where they work.
-- 2. udf._kernel_loader(sources) can load the modules from `sources` (name -> source, as in
--    udf.python_modules) instead of through SPI, and its checkpoint, in parallel mode, reads
--    the backend's pending-cancel and pending-terminate flags instead of running a query: a
--    cancel, statement_timeout or the leader stopping its workers then ends the call.
-- 3. udf.bar_matrices(query, shard, shards) is the one door to kernels in parallel query: it
--    loads the modules with their sources read by plain SQL, then runs `query` (parameters:
--    $1 shard, $2 shards), which returns (symbols, matrix) rows: a kernel's result and the
--    symbols its rows belong to. A full build of a bar family
--    (macros/bar_families) puts one call per shard under a Parallel Append, so the shards'
--    kernels run on several cores at once.

drop function udf._kernel_loader();

create function udf._kernel_loader(sources jsonb default null)
returns void
language plpython3u
as $$
import ctypes
import importlib
import importlib.abc
import importlib.util
import json
import math
import sys
import time

import numpy as np

# prepared on first use: plpy.prepare opens a subtransaction too
plans = {}

def plan(sql, types=()):
    if sql not in plans:
        plans[sql] = plpy.prepare(sql, list(types))
    return plans[sql]

CHECK_INTERVAL = 0.05  # seconds between two interrupt checks of one call, at most
next_check = [0.0]
given = None if sources is None else json.loads(sources)

class ModulesTable(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, given):
        self.given = given

    def source(self, name):
        if self.given is not None:
            return self.given.get(name)
        rows = plpy.execute(plan("select source from udf.python_modules where name = $1", ["text"]), [name])
        return rows[0]["source"] if rows else None

    def find_spec(self, name, path=None, target=None):
        if not name.startswith("tf_") or self.source(name) is None:
            return None
        return importlib.util.spec_from_loader(name, self, origin="udf.python_modules:" + name)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = self.source(module.__name__)
        exec(compile(source, module.__spec__.origin, "exec"), module.__dict__)

sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "ModulesTable"]
sys.meta_path.insert(0, ModulesTable(given))

# the backend's own flags (postgres exports its symbols to the libraries it loads)
backend = ctypes.CDLL(None)
in_parallel_mode = backend.IsInParallelMode
in_parallel_mode.restype = ctypes.c_bool
in_parallel_mode.argtypes = []
cancel_pending = ctypes.c_int.in_dll(backend, "QueryCancelPending")
die_pending = ctypes.c_int.in_dll(backend, "ProcDiePending")

class Interrupted(BaseException):
    """Ends a kernel whose query is being canceled or whose backend is being stopped (no
    kernel catches a BaseException); PostgreSQL then handles the interrupt itself."""

def checkpoint(clock=time.monotonic):
    if clock() < next_check[0]:
        return
    if in_parallel_mode():
        # no SPI in parallel mode: read the flags a cancel or terminate sets
        if cancel_pending.value or die_pending.value:
            raise Interrupted("canceling statement: the kernel's query is being canceled")
    else:
        # an SPI query runs CHECK_FOR_INTERRUPTS: a pending cancel or timeout raises
        # spiexceptions.QueryCanceled here, which no kernel catches; a terminate ends the backend
        plpy.execute(plan("select 1"))
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
comment on function udf._kernel_loader(jsonb) is
    'installs GD["tf_call"], the kernels'' entry, importing tf_* modules from udf.python_modules (or from sources, name -> source, without SPI)';

-- 1. no PL/Python kernel, nor a SQL wrapper of one, in parallel query
do $migration$
declare
    fn regprocedure;
begin
    for fn in
        select p.oid::regprocedure
        from pg_proc as p
        inner join pg_namespace as n on p.pronamespace = n.oid
        inner join pg_language as l on p.prolang = l.oid
        where
            n.nspname = 'udf'
            and p.prokind = 'f'
            and p.proparallel <> 'u'
            and (
                l.lanname = 'plpython3u'
                or (
                    l.lanname = 'sql'
                    and pg_get_functiondef(p.oid) ~ 'udf\._(analytic_signal|bar_rows|emd|garch11_|hht_|hmm_|johansen|spectral_|ssa|wavedec)'
                )
            )
    loop
        execute format('alter function %s parallel unsafe', fn);
    end loop;
end
$migration$;

create function udf.bar_matrices(query text, shard integer, shards integer)
returns table (symbols text[], matrix bytea)
language plpgsql
stable
parallel safe
cost 1000000000
rows 30
as $$
begin
    -- the modules' sources by plain SQL: PL/Python may not query in parallel mode
    perform udf._kernel_loader((select jsonb_object_agg(m.name, m.source) from udf.python_modules as m));
    return query execute query using shard, shards;
end
$$;
comment on function udf.bar_matrices(text, integer, integer) is
    'runs query ($1 shard, $2 shards; returns symbols, matrix) with the kernels loaded without SPI: a bar family''s shard in a parallel full build';
