-- The bar families' kernels (python_udfs/tf_bars.py, FEATURE_DEFINITIONS section K) and the
-- conversions that make them fast.
--
-- PL/Python turns every float8 it returns into text and back (about 0.7 us a value: 400 s for
-- the 600 million values of a month of 28 pairs). The kernels take and return row-major float64
-- bytes instead: udf.float8_pack_agg packs a symbol's bars, udf.float8_rows turns a kernel's
-- result into rows, both at memory speed (the native extension of native/, built by
-- scripts/install-system.sh). Where the server has no tickfeatures_native (a server we did not
-- install), the same functions are defined in PL/pgSQL and PL/Python: the same results, slower.
do $migration$
begin
    if exists (select from pg_available_extensions where name = 'tickfeatures_native') then
        create extension if not exists tickfeatures_native schema udf;
    else
        raise notice 'tickfeatures_native is not installed on this server: the bar families use the slower PL/Python conversions';
        create function udf.float8_pack(vals double precision[]) returns bytea
        language plpython3u immutable strict parallel safe
        as $f$
import struct
def flat(v):
    return [x for item in v for x in flat(item)] if isinstance(v, list) else [v]
values = [float("nan") if v is None else v for v in flat(vals)]
return struct.pack("<%dd" % len(values), *values)
$f$;
        create function udf.float8_unpack(packed bytea) returns double precision[]
        language plpython3u immutable strict parallel safe
        as $f$
import math, struct
values = struct.unpack("<%dd" % (len(packed) // 8), packed)
return [None if math.isnan(v) else v for v in values]
$f$;
        create function udf._float8_pack_agg_step(
            state double precision[], a double precision, b double precision, c double precision,
            d double precision, e double precision, f double precision, g double precision,
            h double precision
        ) returns double precision[]
        language plpgsql immutable parallel safe
        as $f$
        begin
            -- in place: the state is an expanded array while the aggregate runs
            state := array_append(state, a);
            state := array_append(state, b);
            state := array_append(state, c);
            state := array_append(state, d);
            state := array_append(state, e);
            state := array_append(state, f);
            state := array_append(state, g);
            state := array_append(state, h);
            return state;
        end
        $f$;
        create function udf._float8_pack_agg_step9(
            state double precision[], a double precision, b double precision, c double precision,
            d double precision, e double precision, f double precision, g double precision,
            h double precision, i double precision
        ) returns double precision[]
        language plpgsql immutable parallel safe
        as $f$
        begin
            state := udf._float8_pack_agg_step(state, a, b, c, d, e, f, g, h);
            state := array_append(state, i);
            return state;
        end
        $f$;
        create aggregate udf.float8_pack_agg(
            double precision, double precision, double precision, double precision,
            double precision, double precision, double precision, double precision
        ) (sfunc = udf._float8_pack_agg_step, stype = double precision[], finalfunc = udf.float8_pack);
        create aggregate udf.float8_pack_agg(
            double precision, double precision, double precision, double precision,
            double precision, double precision, double precision, double precision,
            double precision
        ) (sfunc = udf._float8_pack_agg_step9, stype = double precision[], finalfunc = udf.float8_pack);
        create function udf.float8_rows(packed bytea, width integer) returns setof record
        language plpython3u immutable strict parallel safe
        as $f$
import math, struct
values = [None if math.isnan(v) else v for v in struct.unpack("<%dd" % (len(packed) // 8), packed)]
return [values[i:i + width] for i in range(0, len(values), width)]
$f$;
    end if;
end
$migration$;

-- udf.bar_rows(model, wanted, packed, params): the rows a bar-family model writes for one
-- symbol: the kernel of `model` run on its bars (packed[1], udf.float8_pack_agg of the rows
-- (minute, open, high, low, close, volume, spread, ticks)) and any coarser bars (packed[2..],
-- rows with `bars` as well, named by params.scales: python_udfs/tf_bars.py), from
-- params.start on, as row-major float64: the bar's open minute since the epoch, then the
-- columns `wanted` (NaN = NULL). Read with udf.float8_rows.
create function udf._bar_rows(
    model text, wanted text[], packed bytea[], params jsonb, out value bytea, out error text
)
language plpython3u
immutable
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_bars", "rows", model, wanted, packed, params)
$$;

create function udf.bar_rows(model text, wanted text[], packed bytea[], params jsonb)
returns bytea
language sql
immutable
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.bar_rows', k.error, k.value) end
    from udf._bar_rows(model, wanted, packed, params) as k;
end;
comment on function udf.bar_rows(text, text[], bytea[], jsonb) is
    'the rows a bar-family model writes for one symbol (python_udfs/tf_bars.py): row-major float64, the open minute then the columns wanted; read with udf.float8_rows';
